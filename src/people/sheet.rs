//! XLSX import sheets (P-21, `rostro people import`) read with `calamine`,
//! guarded against hostile workbooks before and while they are read: the
//! shared-strings part is measured (and its declared `uniqueCount`, which
//! calamine reserves up front, checked against its real length), the sheet's
//! declared dimension is checked before a cell is read, and the cells are
//! streamed, never densified into the declared range, with limits on rows,
//! columns and cells that hold even when the dimension lies.

use std::io::{Cursor, Read, Write};

use calamine::{DataRef, Reader as _, Xlsx};

use super::transfer::Table;

/// The most data rows of one import.
pub const MAX_ROWS: u32 = 1_000_000;
/// The most columns (an export has 29).
pub const MAX_COLS: u32 = 64;
/// The most cells read, empty ones included.
pub const MAX_CELLS: u64 = 10_000_000;
/// The most bytes the shared strings may unpack to.
pub const MAX_SHARED_STRINGS: u64 = 256 * 1024 * 1024;

/// The first sheet of the XLSX `bytes` as text; `Err` says, for the client, why not.
pub fn read_xlsx(bytes: &[u8]) -> Result<Table, String> {
    check_shared_strings(bytes)?;
    let mut book =
        Xlsx::new(Cursor::new(bytes)).map_err(|e| format!("The file is not a readable XLSX workbook: {e}"))?;
    let name = book.sheet_names().first().cloned().ok_or("The workbook has no sheet.")?;
    let mut cells = book.worksheet_cells_reader(&name).map_err(|e| format!("The sheet {name:?} is unreadable: {e}"))?;
    let d = cells.dimensions();
    let (rows, cols) =
        (u64::from(d.end.0.saturating_sub(d.start.0)) + 1, u64::from(d.end.1.saturating_sub(d.start.1)) + 1);
    if rows * cols > u64::from(MAX_ROWS + 1) * u64::from(MAX_COLS) {
        return Err(format!(
            "The sheet declares {rows} rows by {cols} columns; an import reads at most {} rows of {MAX_COLS} columns.",
            MAX_ROWS + 1
        ));
    }
    let mut lines: Vec<(u32, Vec<String>)> = Vec::new();
    let mut read = 0u64;
    while let Some(cell) = cells.next_cell().map_err(|e| format!("The sheet {name:?} is unreadable: {e}"))? {
        read += 1;
        if read > MAX_CELLS {
            return Err(format!("The sheet has more than {MAX_CELLS} cells."));
        }
        let (r, c) = cell.get_position();
        if c >= MAX_COLS {
            return Err(format!("The sheet has a cell in column {}; at most {MAX_COLS} columns are read.", c + 1));
        }
        let text = text_of(cell.get_value());
        if text.is_empty() {
            continue;
        }
        if lines.last().is_none_or(|(last, _)| *last != r) {
            if lines.len() as u64 > u64::from(MAX_ROWS) {
                return Err(format!("The sheet has more than {MAX_ROWS} data rows."));
            }
            if lines.last().is_some_and(|(last, _)| *last > r) {
                return Err("The sheet's rows are out of order.".into());
            }
            lines.push((r, Vec::new()));
        }
        let line = &mut lines.last_mut().expect("a line").1;
        if line.len() <= c as usize {
            line.resize(c as usize + 1, String::new());
        }
        line[c as usize] = text;
    }
    let mut lines = lines.into_iter();
    let (first, header) = lines.next().ok_or("The sheet is empty: it has no header row.")?;
    let width = header.len();
    let rows = lines
        .map(|(r, mut cells)| {
            let number = (r - first) as usize;
            if cells.len() > width {
                return (number, Err(format!("{} columns, the header has {width}", cells.len())));
            }
            cells.resize(width, String::new());
            (number, Ok(cells))
        })
        .collect();
    Ok(Table { header, rows })
}

/// A cell as the text a CSV would hold: whole numbers without a fraction,
/// dates as `YYYY-MM-DD` (with the time when it has one), errors as their code.
fn text_of(v: &DataRef<'_>) -> String {
    match v {
        DataRef::Empty => String::new(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) if dt.is_datetime() => {
            let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
            if (h, mi, s) == (0, 0, 0) {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
            }
        }
        DataRef::DateTime(dt) => dt.as_f64().to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

/// calamine loads every shared string and first reserves room for the
/// declared `uniqueCount`: both are bounded here, from the bytes themselves.
fn check_shared_strings(bytes: &[u8]) -> Result<(), String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("The file is not a readable XLSX workbook: {e}"))?;
    let Ok(part) = zip.by_name("xl/sharedStrings.xml") else { return Ok(()) };
    let mut text = Vec::new();
    part.take(MAX_SHARED_STRINGS + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("The workbook's shared strings are unreadable: {e}"))?;
    if text.len() as u64 > MAX_SHARED_STRINGS {
        return Err(format!("The workbook's shared strings unpack to more than {MAX_SHARED_STRINGS} bytes."));
    }
    let head = String::from_utf8_lossy(&text[..text.len().min(4096)]);
    let declared = head
        .split_once("uniqueCount=")
        .and_then(|(_, rest)| rest.trim_start_matches(['"', '\'']).split(['"', '\'']).next())
        .and_then(|n| n.trim().parse::<u64>().ok());
    // Each string is at least `<si/>`: five bytes.
    if declared.is_some_and(|n| n.saturating_mul(5) > text.len() as u64) {
        return Err("The workbook declares more shared strings than it holds.".into());
    }
    Ok(())
}

/// A one-sheet XLSX of inline strings, `rows[0]` the header (test files, small exports).
pub fn write_xlsx(rows: &[Vec<String>]) -> Vec<u8> {
    let mut xml = String::new();
    for (r, row) in rows.iter().enumerate() {
        xml.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, cell) in row.iter().enumerate() {
            let text = cell.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            xml.push_str(&format!(r#"<c r="{}{}" t="inlineStr"><is><t>{text}</t></is></c>"#, column_name(c), r + 1));
        }
        xml.push_str("</row>");
    }
    let sheet = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{xml}</sheetData></worksheet>"#
    );
    workbook(&sheet, None)
}

/// `A`, `B`, …, `Z`, `AA`, … for the 0-based column `c`.
fn column_name(mut c: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (c % 26) as u8);
        if c < 26 {
            break;
        }
        c = c / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).expect("ASCII")
}

/// A minimal workbook with `sheet` as its only worksheet and `strings` as its shared strings.
fn workbook(sheet: &str, strings: Option<&str>) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let mut part = |name: &str, text: &str| {
        out.start_file(name, opts).expect("start");
        out.write_all(text.as_bytes()).expect("write");
    };
    part(
        "[Content_Types].xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
    );
    part(
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    part(
        "xl/workbook.xml",
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="People" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    );
    let rels = if strings.is_some() {
        r#"<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>"#
    } else {
        ""
    };
    part(
        "xl/_rels/workbook.xml.rels",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>{rels}</Relationships>"#
        ),
    );
    if let Some(s) = strings {
        part("xl/sharedStrings.xml", s);
    }
    part("xl/worksheets/sheet1.xml", sheet);
    out.finish().expect("finish").into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(dimension: &str, rows: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
        )
    }

    #[test]
    fn cells_become_csv_text_rows_numbered_below_the_header() {
        let strings = r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>national_id</t></si><si><t>name</t></si><si><t>Ana</t></si></sst>"#;
        let rows = r#"<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="inlineStr"><is><t>nationality_id</t></is></c></row>
            <row r="2"><c r="A2" t="inlineStr"><is><t>GOMA900101MDFMRN02</t></is></c><c r="B2" t="s"><v>2</v></c><c r="C2"><v>144</v></c></row>
            <row r="4"><c r="A4" t="inlineStr"><is><t>X</t></is></c><c r="E4"><v>1.5</v></c></row>"#;
        let t = read_xlsx(&workbook(&sheet("A1:E4", rows), Some(strings))).expect("read");
        assert_eq!(t.header, ["national_id", "name", "nationality_id"]);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0], (1, Ok(vec!["GOMA900101MDFMRN02".into(), "Ana".into(), "144".into()])));
        assert_eq!(t.rows[1].0, 3, "the blank row 3 keeps its number");
        assert!(t.rows[1].1.is_err(), "a row wider than the header is refused");
    }

    #[test]
    fn hostile_workbooks_are_refused_before_they_are_allocated() {
        // A sheet that claims 10^9 and more cells.
        let huge = read_xlsx(&workbook(&sheet("A1:XFD1048576", r#"<row r="1"><c r="A1"><v>1</v></c></row>"#), None));
        assert!(huge.expect_err("refused").contains("declares 1048576 rows by 16384 columns"));
        // A dimension that lies: a cell far to the right.
        let wide = sheet("A1:A1", r#"<row r="1"><c r="A1"><v>1</v></c><c r="XFD1"><v>2</v></c></row>"#);
        assert!(read_xlsx(&workbook(&wide, None)).expect_err("refused").contains("column 16384"));
        // A shared-strings part that claims four billion strings (calamine would reserve 96 GB).
        let sst = r#"<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="4000000000"><si><t>a</t></si></sst>"#;
        let bomb = read_xlsx(&workbook(&sheet("A1:A1", ""), Some(sst)));
        assert!(bomb.expect_err("refused").contains("more shared strings than it holds"));
        // Not a workbook at all.
        assert!(read_xlsx(b"PK\x03\x04 not really").is_err());
    }
}
