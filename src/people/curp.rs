//! The Mexican CURP: its structure (RENAPO's 18 characters), what it says
//! about the person, and its check digit.
//!
//! `AAAA YYMMDD S EE CCC H D`: four letters from the names, the birth date,
//! sex (`H` man, `M` woman, `X` non-binary), the two-letter code of the
//! state of birth (`NE` born abroad), three inner consonants, a homonym
//! character that is a digit for births before 2000 and a letter from 2000 on,
//! and a check digit over the first 17.

/// What a well-formed CURP says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Curp {
    /// The CURP upper-cased.
    pub text: String,
    /// `YYYY-MM-DD`, or `None` when the six digits are not a real date.
    pub birthdate: Option<String>,
    /// `MALE`, `FEMALE`, or `None` (`X`).
    pub gender: Option<&'static str>,
    /// The two-letter state code (`NE`: born abroad).
    pub state_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurpError {
    #[error("must be exactly 18 characters, got {0}")]
    Length(usize),
    #[error(
        "does not have the structure of a CURP (4 letters, 6 digits, H/M/X, 2-letter state, 3 consonants, 2 characters)"
    )]
    Structure,
    #[error("check digit is {found}, expected {expected}")]
    CheckDigit { found: char, expected: char },
}

/// The value of a character in the check-digit sum (RENAPO's table, Ñ after N).
fn value(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(c as u32 - '0' as u32),
        'A'..='N' => Some(c as u32 - 'A' as u32 + 10),
        'Ñ' => Some(24),
        'O'..='Z' => Some(c as u32 - 'O' as u32 + 25),
        _ => None,
    }
}

/// The check digit of the first 17 characters.
pub fn check_digit(first17: &[char]) -> Option<char> {
    let mut sum = 0u32;
    for (i, &c) in first17.iter().enumerate() {
        sum += value(c)? * (18 - i as u32);
    }
    char::from_digit((10 - sum % 10) % 10, 10)
}

fn is_letter(c: char) -> bool {
    c.is_ascii_uppercase() || c == 'Ñ'
}

/// Parses and checks a CURP.
pub fn parse(text: &str) -> Result<Curp, CurpError> {
    let upper = text.trim().to_uppercase();
    let c: Vec<char> = upper.chars().collect();
    if c.len() != 18 {
        return Err(CurpError::Length(c.len()));
    }
    let consonant = |ch: char| is_letter(ch) && !"AEIOU".contains(ch);
    let structure = c[0..4].iter().all(|&ch| is_letter(ch))
        && c[4..10].iter().all(char::is_ascii_digit)
        && matches!(c[10], 'H' | 'M' | 'X')
        && c[11..13].iter().all(|&ch| is_letter(ch))
        && c[13..16].iter().all(|&ch| consonant(ch))
        && (c[16].is_ascii_digit() || is_letter(c[16]))
        && c[17].is_ascii_digit();
    if !structure {
        return Err(CurpError::Structure);
    }
    let expected = check_digit(&c[..17]).ok_or(CurpError::Structure)?;
    if c[17] != expected {
        return Err(CurpError::CheckDigit { found: c[17], expected });
    }
    let digits: String = c[4..10].iter().collect();
    let century = if c[16].is_ascii_digit() { 1900 } else { 2000 };
    let year = century + digits[0..2].parse::<i16>().unwrap_or(0);
    let birthdate =
        jiff::civil::Date::new(year, digits[2..4].parse::<i8>().unwrap_or(0), digits[4..6].parse::<i8>().unwrap_or(0))
            .ok()
            .map(|d| d.to_string());
    let gender = match c[10] {
        'H' => Some("MALE"),
        'M' => Some("FEMALE"),
        _ => None,
    };
    Ok(Curp { text: upper, birthdate, gender, state_code: c[11..13].iter().collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_sample_decodes_and_checks() {
        let c = parse("pesj880212hdfhlx01").expect("valid");
        assert_eq!(c.text, "PESJ880212HDFHLX01");
        assert_eq!(c.birthdate.as_deref(), Some("1988-02-12"));
        assert_eq!(c.gender, Some("MALE"));
        assert_eq!(c.state_code, "DF");
    }

    #[test]
    fn century_from_position_17_and_wrong_digits_refused() {
        // A letter at 17: born in 2000 or later.
        let first: Vec<char> = "GOMA050101MJCNRNA".chars().collect();
        let d = check_digit(&first).expect("digit");
        let c = parse(&format!("GOMA050101MJCNRNA{d}")).expect("valid");
        assert_eq!(
            (c.birthdate.as_deref(), c.gender, c.state_code.as_str()),
            (Some("2005-01-01"), Some("FEMALE"), "JC")
        );
        let wrong = char::from_digit((d.to_digit(10).expect("digit") + 1) % 10, 10).expect("digit");
        assert!(matches!(parse(&format!("GOMA050101MJCNRNA{wrong}")), Err(CurpError::CheckDigit { .. })));
        assert_eq!(parse("PESJ880212HDFHLX0"), Err(CurpError::Length(17)));
        assert_eq!(parse("PESJ88021XHDFHLX01"), Err(CurpError::Structure));
        // An impossible date still has a structure; the date is simply unknown.
        let first: Vec<char> = "PESJ881312HDFHLX0".chars().collect();
        let d = check_digit(&first).expect("digit");
        assert_eq!(parse(&format!("PESJ881312HDFHLX0{d}")).expect("valid").birthdate, None);
    }
}
