//! PIL's affine warps with nearest-neighbour sampling (`Image.transform(size, AFFINE, ...)`, `Image.rotate`),
//! the pixels that come from outside the image filled with 0 (black), as CTAugment's PIL calls leave them.

use super::super::image::Image;

/// `Image.transform((out_w, out_h), AFFINE, m, NEAREST)`: output pixel (x, y) takes the input pixel at
/// `(⌊a·(x+½) + b·(y+½) + c⌋, ⌊d·(x+½) + e·(y+½) + f⌋)` for `m = [a, b, c, d, e, f]` (PIL samples at pixel
/// centres), or 0 when that lies outside.
pub fn affine_nearest(img: &Image, out_h: usize, out_w: usize, m: [f64; 6]) -> Image {
    let [a, b, c, d, e, f] = m;
    let coord = |v: f64, n: usize| (v >= 0.0 && v < n as f64).then_some(v as usize);
    let mut sources = Vec::with_capacity(out_h * out_w);
    for y in 0..out_h {
        let yc = y as f64 + 0.5;
        for x in 0..out_w {
            let xc = x as f64 + 0.5;
            let sx = coord(a * xc + b * yc + c, img.w);
            let sy = coord(d * xc + e * yc + f, img.h);
            sources.push(sx.zip(sy).map(|(sx, sy)| sy * img.w + sx));
        }
    }
    let mut data = Vec::with_capacity(img.c * out_h * out_w);
    for ch in 0..img.c {
        let plane = img.plane(ch);
        data.extend(sources.iter().map(|s| s.map_or(0.0, |i| plane[i])));
    }
    Image::new(img.c, out_h, out_w, data)
}

/// `Image.rotate(degrees)`: counter-clockwise about the image centre, same size, corners filled black. PIL rounds
/// the matrix's sines and cosines to 15 decimals, which makes multiples of 90° exact.
pub fn rotate(img: &Image, degrees: f64) -> Image {
    if degrees.rem_euclid(360.0) == 0.0 {
        return img.clone();
    }
    let r = -degrees.to_radians();
    let round15 = |v: f64| (v * 1e15).round() / 1e15;
    let (cos, sin) = (round15(r.cos()), round15(r.sin()));
    let (cx, cy) = (img.w as f64 / 2.0, img.h as f64 / 2.0);
    let (a, b, d, e) = (cos, sin, -sin, cos);
    let c = a * -cx + b * -cy + cx;
    let f = d * -cx + e * -cy + cy;
    affine_nearest(img, img.h, img.w, [a, b, c, d, e, f])
}

/// PIL's `(1, s, 0, 0, 1, 0)` affine: input x = x + s·y, a shear about the top-left corner.
pub fn shear_x(img: &Image, s: f64) -> Image {
    affine_nearest(img, img.h, img.w, [1.0, s, 0.0, 0.0, 1.0, 0.0])
}

/// PIL's `(1, 0, 0, s, 1, 0)` affine: input y = s·x + y.
pub fn shear_y(img: &Image, s: f64) -> Image {
    affine_nearest(img, img.h, img.w, [1.0, 0.0, 0.0, s, 1.0, 0.0])
}

/// PIL's `(1, 0, t, 0, 1, 0)` affine: output x shows input x + t, so a positive `t` (pixels) moves the content
/// left.
pub fn translate_x(img: &Image, t: f64) -> Image {
    affine_nearest(img, img.h, img.w, [1.0, 0.0, t, 0.0, 1.0, 0.0])
}

/// PIL's `(1, 0, 0, 0, 1, t)` affine: a positive `t` (pixels) moves the content up.
pub fn translate_y(img: &Image, t: f64) -> Image {
    affine_nearest(img, img.h, img.w, [1.0, 0.0, 0.0, 0.0, 1.0, t])
}
