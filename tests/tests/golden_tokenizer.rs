//! Golden test: our PyTorch script (`tests/golden/gen_tokenizer_fixtures.py`, written from
//! docs/spec.md §6) saved a tiny VQ tokenizer under the upstream keys (wrapped in `model`, with a
//! pickled `args` and the `codebook_used` buffer) plus its encoder latents, indices and decoder
//! outputs for fixed inputs. The import reproduces the outputs (≤ 1e-4) and the indices exactly,
//! on every compiled backend.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use par_device::{Backend, DeviceArgs};
use par_tokenizer::{VqTokenizer, VqTokenizerConfig};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tokenizer")
}

fn npy<T: npyz::Deserialize>(name: &str) -> (Vec<usize>, Vec<T>) {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<T>().unwrap())
}

fn config() -> VqTokenizerConfig {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("config.json")).unwrap())
            .unwrap();
    let u = |k: &str| json[k].as_u64().unwrap() as usize;
    VqTokenizerConfig::new()
        .with_image_channels(u("image_channels"))
        .with_base_channels(u("base_channels"))
        .with_channel_mult(
            json["channel_mult"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect(),
        )
        .with_num_res_blocks(u("num_res_blocks"))
        .with_z_channels(u("z_channels"))
        .with_codebook_size(u("codebook_size"))
        .with_codebook_dim(u("codebook_dim"))
        .with_norm_groups(u("norm_groups"))
}

fn floats4(shape: &[usize], values: Vec<f32>, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, [shape[0], shape[1], shape[2], shape[3]]), device)
}

fn max_diff(a: Tensor<4>, b: &[f32]) -> f32 {
    let a = a.into_data().try_into_vec_as::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) })
}

#[test]
fn imported_tokenizer_reproduces_pytorch() {
    let (ishape, images) = npy::<f32>("images.npy");
    let (_, latent) = npy::<f32>("encoded_latent.npy");
    let (_, indices) = npy::<i64>("encoded_indices.npy");
    let (cshape, codes) = npy::<i64>("codes.npy");
    let (_, decoded) = npy::<f32>("decoded.npy");
    let (_, reconstructed) = npy::<f32>("reconstructed.npy");
    for backend in Backend::compiled() {
        let device = DeviceArgs { backend: Some(backend), ..Default::default() }.device().unwrap();
        let model =
            VqTokenizer::load(&fixtures().join("tiny_vq.pt"), Some(&config()), &device).unwrap();
        let x = floats4(&ishape, images.clone(), &device);
        let z = model.quant_conv.forward(model.encoder.forward(x.clone()));
        let d = max_diff(z, &latent);
        assert!(d <= 1e-4, "{backend}: latent max |Δ| = {d}");
        let got = model.encode(x).into_data().try_into_vec_as::<i64>().unwrap();
        assert_eq!(got, indices, "{backend}: indices");
        let c = Tensor::<3, Int>::from_data(
            TensorData::new(codes.clone(), [cshape[0], cshape[1], cshape[2]]),
            &device,
        );
        let d = max_diff(model.decode(c), &decoded);
        assert!(d <= 1e-4, "{backend}: decoded max |Δ| = {d}");
        let c = Tensor::<3, Int>::from_data(
            TensorData::new(indices.clone(), [cshape[0], cshape[1], cshape[2]]),
            &device,
        );
        let d = max_diff(model.decode(c), &reconstructed);
        assert!(d <= 1e-4, "{backend}: reconstructed max |Δ| = {d}");
    }
}

#[test]
fn wrong_config_names_the_key() {
    let device = Device::flex();
    let err = VqTokenizer::load(
        &fixtures().join("tiny_vq.pt"),
        Some(&config().with_z_channels(32)),
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("encoder.conv_out.weight"), "{err}");
    let err = VqTokenizer::load(
        &fixtures().join("tiny_vq.pt"),
        Some(&config().with_num_res_blocks(2)),
        &device,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("missing key `encoder.conv_blocks.0.res.1.norm1.weight`"),
        "{err}"
    );
}
