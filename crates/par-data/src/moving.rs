//! Moving Fashion-MNIST: class-conditional video clips of one moving 28 × 28 image, the video
//! setting's small real-data stand-in for UCF-101 (docs/spec.md §8) that trains on a CPU.
//!
//! The construction follows Moving MNIST (Srivastava, Mansimov & Salakhutdinov 2015,
//! "Unsupervised Learning of Video Representations using LSTMs", §3): a digit moves inside a
//! 64 × 64 black frame with a random start and velocity and bounces off the borders. Ours has
//! **one** object per clip (theirs two) so a clip has the object's label as its class, moves it by
//! whole pixels (no interpolation: every frame holds the image's exact pixels) and draws it by
//! overwriting the black background. Positions and velocities are drawn from a seed, so a clip
//! is a pure function of `(image, frames, frame_size, seed)`.

use rayon::prelude::*;

use crate::video::{SplitMix, mix};
use crate::{DataError, IdxImages, MAX_IMAGE_SIZE, PixelImage, VideoClip};

/// The per-axis velocities (pixels per frame) a clip draws from, uniformly and independently
/// for x and y: speeds of √2 to 3√2 ≈ 4.2 pixels per frame (Moving MNIST's is about 3.6 at
/// 64 px). Odd, so the object moves along both axes in every frame, bounces included (see
/// [`moving_path`]).
pub const MOVING_VELOCITIES: [i64; 4] = [-3, -1, 1, 3];

/// Folds the unbounded coordinate `p` into `0..=limit` by reflection at both ends (a triangle
/// wave of period `2·limit`): the position of a point moving with constant velocity that
/// bounces off the walls at 0 and `limit` elastically.
fn bounce(p: i64, limit: i64) -> usize {
    if limit == 0 {
        return 0;
    }
    let m = p.rem_euclid(2 * limit);
    (if m > limit { 2 * limit - m } else { m }) as usize
}

/// The `(left, top)` positions, one per frame, of an object that can sit at `0..=max_left` ×
/// `0..=max_top`: the start is uniform over those positions, each axis's velocity uniform over
/// [`MOVING_VELOCITIES`], both drawn from `seed`; frame `t` is at `bounce(start + t·velocity)`
/// per axis. With both limits ≥ 1 the position changes along each axis in every frame: a
/// reflection maps `p + v` back onto `p` only for even `v`.
pub fn moving_path(
    max_left: usize,
    max_top: usize,
    frames: usize,
    seed: u64,
) -> Vec<(usize, usize)> {
    let mut rng = SplitMix::new(mix(seed));
    let x0 = rng.below(max_left as u64 + 1) as i64;
    let y0 = rng.below(max_top as u64 + 1) as i64;
    let n = MOVING_VELOCITIES.len() as u64;
    let vx = MOVING_VELOCITIES[rng.below(n) as usize];
    let vy = MOVING_VELOCITIES[rng.below(n) as usize];
    (0..frames as i64)
        .map(|t| (bounce(x0 + t * vx, max_left as i64), bounce(y0 + t * vy, max_top as i64)))
        .collect()
}

fn setting(field: &'static str, reason: String) -> DataError {
    DataError::Setting { field, reason }
}

/// One clip: `image` (1 channel, replicated to RGB; or 3 channels) moving on a black
/// `frame_size × frame_size` frame along [`moving_path`]`(frame_size − width, frame_size −
/// height, frames, seed)`, the object drawn over the background (the frame outside it is 0).
/// The object is always entirely inside the frame, so every frame's pixel sum per channel is the
/// image's.
///
/// # Shapes
///
/// `image` `[h, w, c]`, `c ∈ {1, 3}` → clip `[frames, frame_size, frame_size, 3]`.
///
/// # Errors
///
/// [`DataError::Setting`] naming `image` (empty, not 1 or 3 channels, data of the wrong
/// length), `frames` (0) or `frame_size` (not larger than the image's sides, so it could not
/// move; above [`MAX_IMAGE_SIZE`]).
pub fn moving_clip(
    image: &PixelImage,
    label: usize,
    frames: usize,
    frame_size: usize,
    seed: u64,
) -> Result<VideoClip, DataError> {
    let (w, h, c) = (image.width, image.height, image.channels);
    if w == 0 || h == 0 || !matches!(c, 1 | 3) || image.data.len() != w * h * c {
        return Err(setting(
            "image",
            format!(
                "must be a non-empty 1- or 3-channel image, got {w}×{h}×{c} with {} bytes",
                image.data.len()
            ),
        ));
    }
    if frames == 0 {
        return Err(setting("frames", "must be ≥ 1, got 0".into()));
    }
    if frame_size <= w.max(h) || frame_size > MAX_IMAGE_SIZE {
        return Err(setting(
            "frame_size",
            format!(
                "must exceed the image's sides ({w}×{h}) so it can move, and be at most \
                 {MAX_IMAGE_SIZE}, got {frame_size}"
            ),
        ));
    }
    let frame_bytes = frame_size * frame_size * 3;
    let mut data = vec![0u8; frames * frame_bytes];
    let path = moving_path(frame_size - w, frame_size - h, frames, seed);
    for (frame, &(left, top)) in data.chunks_exact_mut(frame_bytes).zip(&path) {
        for y in 0..h {
            let row = ((top + y) * frame_size + left) * 3;
            for x in 0..w {
                for ch in 0..3 {
                    frame[row + x * 3 + ch] = image.data[(y * w + x) * c + ch.min(c - 1)];
                }
            }
        }
    }
    Ok(VideoClip { class: label, frames, height: frame_size, width: frame_size, data })
}

/// The seed of clip `index` of [`moving_clips`] with `seed`.
pub fn moving_seed(seed: u64, index: usize) -> u64 {
    mix(seed ^ mix(index as u64))
}

/// `count` clips from an IDX set (Fashion-MNIST, MNIST): clip `i` is
/// [`moving_clip`]`(images.image(i mod n), images.labels[i mod n], frames, frame_size,
/// moving_seed(seed, i))` for `n` images, so `count > n` gives each image several trajectories.
/// Built in parallel; the result is the same on any number of threads. Memory: `count · frames
/// · frame_size² · 3` bytes (208 KB per clip of 17 frames at 64 × 64).
///
/// # Shapes
///
/// Each clip `[frames, frame_size, frame_size, 3]`, its class the image's label.
///
/// # Errors
///
/// [`DataError::Setting`] naming `images` when the set is empty (and `count > 0`); those of
/// [`moving_clip`].
pub fn moving_clips(
    images: &IdxImages,
    count: usize,
    frames: usize,
    frame_size: usize,
    seed: u64,
) -> Result<Vec<VideoClip>, DataError> {
    if images.is_empty() && count > 0 {
        return Err(setting("images", "the set holds no images".into()));
    }
    (0..count)
        .into_par_iter()
        .map(|i| {
            let k = i % images.len();
            moving_clip(
                &images.image(k),
                images.labels[k] as usize,
                frames,
                frame_size,
                moving_seed(seed, i),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 28 × 28 image with a non-symmetric pattern (no zero border, so the bounding box of the
    /// non-zero pixels is the object's position).
    fn object() -> PixelImage {
        let data = (0..28 * 28).map(|i| 1 + (i * 7 % 250) as u8).collect();
        PixelImage { width: 28, height: 28, channels: 1, data }
    }

    /// `(left, top)` of the non-zero pixels' bounding box, and the frame's sum per channel.
    fn locate(clip: &VideoClip, t: usize) -> ((usize, usize), [u64; 3]) {
        let f = clip.frame(t).unwrap();
        let (mut left, mut top) = (usize::MAX, usize::MAX);
        let mut sums = [0u64; 3];
        for (i, px) in f.data.chunks(3).enumerate() {
            for (c, &v) in px.iter().enumerate() {
                sums[c] += v as u64;
            }
            if px.iter().any(|&v| v > 0) {
                left = left.min(i % f.width);
                top = top.min(i / f.width);
            }
        }
        ((left, top), sums)
    }

    #[test]
    fn moving_object_stays_inside_moves_and_keeps_its_pixel_sum() {
        let image = object();
        let image_sum: u64 = image.data.iter().map(|&v| v as u64).sum();
        for seed in 0..40 {
            let clip = moving_clip(&image, 7, 17, 64, seed).unwrap();
            assert!(clip.is_consistent());
            assert_eq!((clip.class, clip.frames, clip.height, clip.width), (7, 17, 64, 64));
            let path = moving_path(36, 36, 17, seed);
            let mut previous = None;
            for (t, &expected) in path.iter().enumerate() {
                let (at, sums) = locate(&clip, t);
                assert_eq!(at, expected, "seed {seed} frame {t}");
                assert!(at.0 + 28 <= 64 && at.1 + 28 <= 64, "inside the frame");
                // Analytic: the whole object is in the frame and the background is black.
                assert_eq!(sums, [image_sum; 3], "seed {seed} frame {t}");
                if let Some((px, py)) = previous {
                    assert!(at.0 != px && at.1 != py, "moves along both axes, seed {seed} t {t}");
                    let (dx, dy) = (at.0.abs_diff(px), at.1.abs_diff(py));
                    assert!(dx <= 3 && dy <= 3, "a few pixels per frame");
                }
                previous = Some(at);
            }
            // The object's pixels are the image's, copied unchanged into each channel.
            let ((l, t0), _) = locate(&clip, 0);
            let f = clip.frame(0).unwrap();
            assert_eq!(f.data[((t0 + 3) * 64 + l + 5) * 3 + 2], image.data[3 * 28 + 5]);
        }
    }

    #[test]
    fn moving_clips_are_deterministic_per_seed_and_differ_across_seeds() {
        let image = object();
        let a = moving_clip(&image, 1, 17, 64, 5).unwrap();
        assert_eq!(a, moving_clip(&image, 1, 17, 64, 5).unwrap());
        let paths: std::collections::HashSet<Vec<(usize, usize)>> =
            (0..50).map(|s| moving_path(36, 36, 17, s)).collect();
        assert!(paths.len() >= 49, "{} distinct paths of 50 seeds", paths.len());
        assert_ne!(a, moving_clip(&image, 1, 17, 64, 6).unwrap());

        let set = IdxImages {
            rows: 28,
            cols: 28,
            pixels: [image.data.clone(), image.data.iter().map(|v| v / 2 + 1).collect()].concat(),
            labels: vec![3, 9],
        };
        let clips = moving_clips(&set, 5, 4, 40, 11).unwrap();
        assert_eq!(clips.iter().map(|c| c.class).collect::<Vec<_>>(), [3, 9, 3, 9, 3]);
        assert_eq!(clips[4], moving_clip(&set.image(0), 3, 4, 40, moving_seed(11, 4)).unwrap());
        assert_ne!(clips[0], clips[2], "same image, another trajectory");
        assert_eq!(clips, moving_clips(&set, 5, 4, 40, 11).unwrap());
    }

    #[test]
    fn bad_settings_are_named() {
        let image = object();
        let field = |r: Result<VideoClip, DataError>| match r {
            Err(DataError::Setting { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(moving_clip(&image, 0, 0, 64, 0)), "frames");
        assert_eq!(field(moving_clip(&image, 0, 17, 28, 0)), "frame_size");
        let flat = PixelImage { width: 28, height: 28, channels: 2, data: vec![0; 28 * 28 * 2] };
        assert_eq!(field(moving_clip(&flat, 0, 17, 64, 0)), "image");
        let empty = IdxImages { rows: 28, cols: 28, pixels: vec![], labels: vec![] };
        assert!(matches!(
            moving_clips(&empty, 1, 17, 64, 0),
            Err(DataError::Setting { field: "images", .. })
        ));
        assert!(moving_clips(&empty, 0, 17, 64, 0).unwrap().is_empty());
    }
}
