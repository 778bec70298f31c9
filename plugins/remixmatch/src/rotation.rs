//! The rotation task's inputs and targets (`docs/method.md` §6.3 step 2): a batch split in quarters, rotated by
//! 0°, 180°, 90° and 270° (anticlockwise) by flips and transposes, as the original's `random_rotate`; the
//! targets are the quarter numbers 0, 1, 2, 3. With `B` not a multiple of 4 the last quarter takes the rest.
use relab_core::Result;

/// Rotates `images` (`B × C × S × S`, row-major) in place by quarter and returns each image's rotation class.
pub fn rotate_quarters(images: &mut [f32], [b, c, h, w]: [usize; 4]) -> Result<Vec<u32>> {
    if h != w {
        return Err(relab_core::Error::stage(
            "train",
            format!("the rotation loss needs square images, these are {h}×{w} (set w_rot: 0)"),
        ));
    }
    let q = b / 4;
    let class = |i: usize| if i < 3 * q { (i / q.max(1)) as u32 } else { 3 };
    let labels: Vec<u32> = (0..b).map(class).collect();
    let plane = h * w;
    let mut buffer = vec![0f32; plane];
    for (i, image) in images.chunks_exact_mut(c * plane).enumerate() {
        for p in image.chunks_exact_mut(plane) {
            buffer.copy_from_slice(p);
            for y in 0..h {
                for x in 0..w {
                    p[y * w + x] = buffer[source(labels[i], y, x, h)];
                }
            }
        }
    }
    Ok(labels)
}

/// Where output pixel (`y`, `x`) of an `s × s` plane rotated by class `r` comes from:
/// 0 identity; 1 both axes flipped (180°); 2 transposed then rows flipped (90° anticlockwise); 3 transposed then
/// columns flipped (270° anticlockwise).
fn source(r: u32, y: usize, x: usize, s: usize) -> usize {
    let (sy, sx) = match r {
        0 => (y, x),
        1 => (s - 1 - y, s - 1 - x),
        2 => (x, s - 1 - y),
        _ => (s - 1 - x, y),
    };
    sy * s + sx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_rotate_by_0_180_90_270_as_by_hand() {
        // Five 2×2 one-channel images [1 2; 3 4] (batch 5: quarters of 1, the last takes 2).
        let one = [1.0, 2.0, 3.0, 4.0];
        let mut images: Vec<f32> = one.iter().copied().cycle().take(20).collect();
        let labels = rotate_quarters(&mut images, [5, 1, 2, 2]).unwrap();
        assert_eq!(labels, vec![0, 1, 2, 3, 3]);
        // 180°: [4 3; 2 1]. 90° anticlockwise: the right column becomes the top row, [2 4; 1 3]. 270°: [3 1; 4 2].
        assert_eq!(&images[..4], &one);
        assert_eq!(&images[4..8], &[4.0, 3.0, 2.0, 1.0]);
        assert_eq!(&images[8..12], &[2.0, 4.0, 1.0, 3.0]);
        assert_eq!(&images[12..16], &[3.0, 1.0, 4.0, 2.0]);
        assert_eq!(&images[16..20], &[3.0, 1.0, 4.0, 2.0]);
    }

    #[test]
    fn a_3x3_plane_and_every_channel_rotate() {
        // Two channels of [0..9] and [10..19]; batch 8 → quarters of 2, image 4 (class 2) is 90° anticlockwise.
        let image: Vec<f32> = (0..18).map(|v| v as f32).collect();
        let mut images: Vec<f32> = image.iter().copied().cycle().take(8 * 18).collect();
        let labels = rotate_quarters(&mut images, [8, 2, 3, 3]).unwrap();
        assert_eq!(labels, vec![0, 0, 1, 1, 2, 2, 3, 3]);
        // [0 1 2; 3 4 5; 6 7 8] rotated 90° anticlockwise is [2 5 8; 1 4 7; 0 3 6].
        let want: Vec<f32> = [2, 5, 8, 1, 4, 7, 0, 3, 6].iter().map(|&v| v as f32).collect();
        assert_eq!(&images[4 * 18..4 * 18 + 9], &want[..]);
        let want: Vec<f32> = want.iter().map(|v| v + 9.0).collect();
        assert_eq!(&images[4 * 18 + 9..5 * 18], &want[..]);
        // 90° then 270° is the identity, and 180° twice too.
        for (first, then) in [(2, 3), (1, 1)] {
            for (y, x) in [(0, 0), (0, 2), (1, 2), (2, 1)] {
                let mid = source(then, y, x, 3);
                assert_eq!(source(first, mid / 3, mid % 3, 3), y * 3 + x);
            }
        }
        assert!(rotate_quarters(&mut [0.0; 4], [1, 1, 2, 2]).is_ok());
        assert!(rotate_quarters(&mut [0.0; 6], [1, 1, 2, 3]).is_err());
    }
}
