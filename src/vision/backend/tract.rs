//! tract backend: pure Rust, no shared library. Slower than ONNX Runtime; kept
//! for targets where a C++ runtime is unwanted, and as a differential check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::{Backend, BackendError, Model, Precision, Tensor};

/// Plans are specialised to one input shape; a detector fed frames of a few
/// sizes keeps one plan per size, up to this many.
const MAX_PLANS: usize = 8;

pub struct TractBackend;

impl TractBackend {
    pub fn new() -> Self {
        TractBackend
    }
}

impl Default for TractBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Backend for TractBackend {
    fn load(&self, path: &Path, precision: Precision) -> Result<Box<dyn Model>, BackendError> {
        precision.f32_only("tract", path)?;
        let fail = |e: &dyn std::fmt::Display| BackendError::Load { path: path.to_path_buf(), reason: e.to_string() };
        let model = tract_onnx::onnx().model_for_path(path).map_err(|e| fail(&e))?;
        // tract labels outlets with the ONNX output names; fall back to the producing node's name.
        let outlets = model.output_outlets().map_err(|e| fail(&e))?.to_vec();
        let outputs = outlets
            .iter()
            .map(|o| model.outlet_label(*o).map(str::to_string).unwrap_or_else(|| model.node(o.node).name.clone()))
            .collect();
        Ok(Box::new(TractModel { path: path.to_path_buf(), model, plans: HashMap::new(), outputs }))
    }

    fn name(&self) -> &'static str {
        "tract"
    }
}

type Plan = Arc<TypedRunnableModel>;

struct TractModel {
    path: PathBuf,
    model: InferenceModel,
    plans: HashMap<Vec<usize>, Plan>,
    outputs: Vec<String>,
}

impl TractModel {
    fn plan(&mut self, shape: &[usize]) -> TractResult<Plan> {
        if let Some(plan) = self.plans.get(shape) {
            return Ok(plan.clone());
        }
        let plan = self.model.clone().with_input_fact(0, f32::fact(shape).into())?.into_optimized()?.into_runnable()?;
        if self.plans.len() >= MAX_PLANS {
            self.plans.clear();
        }
        self.plans.insert(shape.to_vec(), plan.clone());
        Ok(plan)
    }
}

impl Model for TractModel {
    fn run(&mut self, shape: &[usize], input: &[f32]) -> Result<Vec<Tensor>, BackendError> {
        let model = self.path.display().to_string();
        let fail = |e: TractError| BackendError::Run { model: model.clone(), reason: e.to_string() };
        let plan = self.plan(shape).map_err(fail)?;
        let input = tract_onnx::prelude::Tensor::from_shape(shape, input).map_err(fail)?;
        let outputs = plan.run(tvec!(input.into())).map_err(fail)?;
        outputs
            .iter()
            .map(|o| {
                let view = o.to_plain_array_view::<f32>()?;
                Ok(Tensor { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
            })
            .collect::<TractResult<Vec<_>>>()
            .map_err(fail)
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
