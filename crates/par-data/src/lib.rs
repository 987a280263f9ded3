//! Image datasets and pre-tokenized code stores (docs/spec.md §5.1):
//!
//! - inputs: an ImageFolder tree ([`ImageFolder`], class id = index of the sorted folder name, as
//!   torchvision) or MNIST-style IDX files ([`IdxImages`], `.gz` or raw);
//! - augmentation exactly as LlamaGen's `extract_codes_c2i.py`: ADM centre crop
//!   ([`adm_center_crop`], Pillow's BOX / BICUBIC resampling reproduced bit for bit on 8-bit
//!   images) to `image_size · crop_range`, then [`ten_crop`] (4 corners + centre, and the same of
//!   the horizontal flip) or centre + flip;
//! - outputs: the LlamaGen/PAR layout of one `.npy` per image ([`llamagen`]) and a compact single
//!   file ([`compact`], format in `docs/data.md`), both read back by [`CodeStore`];
//! - video (docs/spec.md §8): a UCF-101-layout index ([`VideoFolder`]) and random clips decoded
//!   by a spawned `ffmpeg` ([`decode_clip`], [`ClipSet`]), and moving Fashion-MNIST clips
//!   ([`moving_clip`]), all as [`VideoClip`]s.
#![warn(missing_docs)]

mod crop;
mod error;
mod folder;
mod idx;
mod imageset;
mod moving;
pub mod npy;
pub mod npz;
mod pixels;
mod resample;
mod store;
mod video;

pub mod compact;
pub mod llamagen;

pub use crop::{Augmentation, adm_center_crop, augment, crop_size, five_crop_offsets, ten_crop};
pub use error::DataError;
pub use folder::{IMAGE_EXTENSIONS, ImageFolder};
pub use idx::{FASHION_MNIST_CLASSES, IdxImages, IdxSplit, read_idx_labels};
pub use imageset::ImageSet;
pub use moving::{MOVING_VELOCITIES, moving_clip, moving_clips, moving_path, moving_seed};
pub use pixels::{PixelImage, decode_image, load_image};
pub use resample::{Filter, interpolate_bicubic, resize};
pub use store::{COMPACT_FILE, CodeStore, CodeStoreInfo, REPORT_FILE};
pub use video::{
    CLASS_INDEX_FILE, ClipIter, ClipReport, ClipSet, ClipSpec, DEFAULT_SPLIT_FILE, DecodedClip,
    FFMPEG_ENV, MAX_FPS, SPLIT_LIST_FOLDER, VIDEO_EXTENSIONS, VideoClip, VideoFolder, check_ffmpeg,
    decode_clip, ffmpeg_program,
};

/// The largest image side (pixels) the training and pre-tokenization jobs accept: 16× the
/// paper's 256 px; a larger value is a typo that would only fail on allocation.
pub const MAX_IMAGE_SIZE: usize = 4096;
