//! Exact snapshots of a module for resumable training: every float tensor (parameters and
//! running statistics) under its Burn module path, **with its [`ParamId`]**, so an optimizer
//! state saved alongside (keyed by parameter id) still matches after a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::TensorData;
use par_store::{CheckpointError, StateDict, WeightTensor};

/// Metadata key of the `{path: param id}` map in a snapshot.
pub const PARAM_IDS_KEY: &str = "par_param_ids";

#[derive(Default)]
struct Path(Vec<String>);

impl Path {
    fn key(&self) -> String {
        self.0.join(".")
    }
}

struct Collect {
    path: Path,
    /// The current leaf name (fields named by `enter_module`).
    tensors: BTreeMap<String, WeightTensor>,
    ids: BTreeMap<String, u64>,
    failure: Option<String>,
}

impl ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.0.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.0.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.key();
        let data = param.val().into_data();
        let shape = data.shape().to_vec();
        match data.try_into_vec_as::<f32>() {
            Ok(values) => {
                self.ids.insert(key.clone(), param.id.val());
                self.tensors.insert(key, WeightTensor { shape, values });
            }
            Err(e) => self.failure = Some(format!("reading `{key}`: {e:?}")),
        }
    }
}

/// Every float tensor of `module` by module path, with the parameter ids as metadata.
///
/// # Errors
///
/// [`CheckpointError::Format`] if a tensor cannot be read back, or if two tensors share a path
/// (a module whose fields the derive does not name).
pub fn snapshot<M: Module>(module: &M) -> Result<StateDict, CheckpointError> {
    let mut c = Collect {
        path: Path::default(),
        tensors: BTreeMap::new(),
        ids: BTreeMap::new(),
        failure: None,
    };
    let mut count = 0usize;
    struct Count<'a>(&'a mut usize);
    impl ModuleVisitor for Count<'_> {
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
            *self.0 += 1;
        }
    }
    module.visit(&mut Count(&mut count));
    module.visit(&mut c);
    if let Some(reason) = c.failure {
        return Err(CheckpointError::Format { path: PathBuf::new(), reason });
    }
    if c.tensors.len() != count {
        return Err(CheckpointError::Format {
            path: PathBuf::new(),
            reason: format!("{count} tensors but {} distinct module paths", c.tensors.len()),
        });
    }
    let mut state = StateDict { tensors: c.tensors, ..StateDict::default() };
    state.store_json(PARAM_IDS_KEY, &c.ids);
    Ok(state)
}

struct Restore<'a> {
    path: Path,
    state: &'a StateDict,
    ids: BTreeMap<String, u64>,
    seen: usize,
    failure: Option<CheckpointError>,
}

impl ModuleMapper for Restore<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.0.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.0.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.key();
        let file = self.state.path.clone();
        let Some(stored) = self.state.tensors.get(&key) else {
            self.failure.get_or_insert(CheckpointError::MissingKey { path: file, key });
            return param;
        };
        let (id, old, mapper) = param.consume();
        if stored.shape != old.dims() {
            self.failure.get_or_insert(CheckpointError::Shape {
                path: file,
                key,
                expected: old.dims().to_vec(),
                actual: stored.shape.clone(),
            });
            return Param::from_mapped_value(id, old, mapper);
        }
        self.seen += 1;
        let dims: [usize; D] = old.dims();
        let data = TensorData::new(stored.values.clone(), dims);
        let value = Tensor::<D>::from_data(data, (&old.device(), old.dtype()))
            .set_require_grad(old.is_require_grad());
        let id = self.ids.get(&key).map(|&v| ParamId::from(v)).unwrap_or(id);
        Param::from_mapped_value(id, value, mapper)
    }
}

/// Loads a [`snapshot`] into `module` (same architecture): values, and the parameter ids the
/// snapshot recorded.
///
/// # Errors
///
/// [`CheckpointError`] naming a missing, mis-shaped or unexpected path.
pub fn restore<M: Module>(module: M, state: &StateDict) -> Result<M, CheckpointError> {
    let ids: BTreeMap<String, u64> = state.stored_json(PARAM_IDS_KEY)?.unwrap_or_default();
    let mut r = Restore { path: Path::default(), state, ids, seen: 0, failure: None };
    let module = module.map(&mut r);
    if let Some(e) = r.failure {
        return Err(e);
    }
    if r.seen != state.tensors.len() {
        let known = snapshot(&module)?;
        if let Some(key) = state.tensors.keys().find(|k| !known.tensors.contains_key(*k)) {
            return Err(CheckpointError::UnexpectedKey {
                path: state.path.clone(),
                key: key.clone(),
            });
        }
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{BatchNormConfig, LinearConfig};

    #[derive(Module, Debug)]
    struct Net {
        a: burn::nn::Linear,
        b: Vec<burn::nn::Linear>,
        norm: burn::nn::BatchNorm,
    }

    fn net(device: &Device) -> Net {
        Net {
            a: LinearConfig::new(3, 4).init(device),
            b: vec![LinearConfig::new(4, 2).init(device), LinearConfig::new(2, 2).init(device)],
            norm: BatchNormConfig::new(2).init(device),
        }
    }

    #[test]
    fn snapshot_restore_round_trips_values_and_ids() {
        let device = Device::flex().autodiff();
        let original = net(&device);
        let state = snapshot(&original).unwrap();
        assert!(
            state.tensors.contains_key("b.1.weight")
                && state.tensors.contains_key("norm.running_mean")
        );
        let restored = restore(net(&device), &state).unwrap();
        assert_eq!(restored.a.weight.id, original.a.weight.id);
        assert_eq!(
            restored.b[1].bias.as_ref().unwrap().id,
            original.b[1].bias.as_ref().unwrap().id
        );
        let again = snapshot(&restored).unwrap();
        assert_eq!(again.tensors, state.tensors);
        assert!(restored.a.weight.val().is_require_grad());
    }

    #[test]
    fn restore_names_a_mis_shaped_tensor() {
        let device = Device::flex();
        let mut state = snapshot(&net(&device)).unwrap();
        state.tensors.get_mut("a.weight").unwrap().shape = vec![4, 3];
        let err = restore(net(&device), &state).unwrap_err();
        assert!(err.to_string().contains("a.weight"), "{err}");
    }
}
