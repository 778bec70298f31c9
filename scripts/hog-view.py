#!/usr/bin/env python3
"""A second view for the propagation: HOG descriptors of the full-size Fashion-MNIST training images beside an
encoder's features, written as one .npy file for `stages.features.from`.

The measurement in docs/results.md ("A second view: HOG at full resolution") used this script. It reads the 60,000
training images at 28×28 from the Debian package (not the 16×16 images the main job trains on), computes scikit-image's
HOG (9 orientations, 4×4-pixel cells, 2×2-cell blocks, L2-Hys), projects it on its top 128 principal components, and
writes [l2(features), l2(hog)] row by row (f32, N × (D + 128)): each half scaled to unit length.

    pip install numpy scikit-image scikit-learn
    python3 scripts/hog-view.py runs/fashion-mnist-40/features/features.npy imix-hog.npy
    relab run experiments/fashion-mnist-40.yaml --set stages.features.from=imix-hog.npy --out runs/fashion-mnist-40-hog
"""
import argparse
import gzip

import numpy as np
from skimage.feature import hog
from sklearn.decomposition import PCA

IMAGES = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"


def images(path):
    with gzip.open(path) as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28).astype(np.float32) / 255


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("features", help="the encoder's features, N × D .npy, rows in the training set's order")
    ap.add_argument("out", help="the .npy file to write")
    ap.add_argument("--images", default=IMAGES, help="train-images-idx3-ubyte.gz")
    ap.add_argument("--pca", type=int, default=128, help="principal components of the HOG kept")
    args = ap.parse_args()

    features = np.load(args.features).astype(np.float32)
    x = images(args.images)
    if len(x) != len(features):
        raise SystemExit(f"{args.features}: {len(features)} rows, but {args.images} holds {len(x)} images")
    h = np.stack([hog(im, orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2)) for im in x])
    h = PCA(args.pca, random_state=0).fit_transform(h.astype(np.float32)).astype(np.float32)
    np.save(args.out, np.hstack([unit_rows(features), unit_rows(h)]).astype(np.float32))
    print(f"{args.out}: {len(x)} × {features.shape[1] + h.shape[1]}")


if __name__ == "__main__":
    main()
