#!/usr/bin/env python3
"""Regenerates the committed FID fixtures: basicsr 1.4.2's FID Inception features with seeded
random weights, its calculate_fid on those features' statistics, and scipy's value of the Fréchet
distance on fixed statistics.

Run with the reference environment's python (basicsr 1.4.2, torch, torchvision, numpy, scipy, OpenCV):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_fid_fixtures.py [--time]

Random weights (no download): the network is basicsr's own `InceptionV3([3], resize_input=True,
normalize_input=False)` (`fid_inception_v3()`), whose `load_url` is pointed at a state dict drawn
here, in the pt_inception-2015-12-05 key layout, from ONE torch.Generator seeded with SEED, one
`torch.randn(numel, generator=g)` call per tensor in state-dict order (the order the manifest
lists), transformed in float32 as follows:

  *.conv.weight        randn * float32(sqrt(1.4 / fan_in))    (fan_in = in·kh·kw; features of order 1)
  *.bn.weight          randn * float32(0.1) + 1
  *.bn.bias            randn * float32(0.1)
  *.bn.running_mean    randn * float32(0.1)
  *.bn.running_var     abs(randn) * float32(0.5) + float32(0.5)
  fc.weight, fc.bias   randn * float32(0.01)                  (drawn last; unused by the features)
  *.num_batches_tracked  0 (not drawn)

FIDTests redraws these weights from the manifest with Swift's TorchGenerator instead of a 95 MB
file being committed (against torch 1.13.0a0 its randn agrees to the last bits only: about 1e-7
relative). The exact weights are saved to
~/.cache/facerestore-reference/fixtures/fid_inception_random.pth (never committed); FIDTests uses
them when FACERESTORE_FID_RANDOM_WEIGHTS names that file.

Writes Tests/FaceRestoreEvaluationTests/Fixtures/fid/:
  manifest.txt   VERSIONS line, SEED line, then "key dims…" per drawn tensor in draw order
  b/*.png        small variants of the example faces (folder B of the FID check)
  expected.npz   feat_<name>: the 2048 float32 features of each image (folder A: the repo's
                 examples/faces/*.jpg and examples/*.jpg; folder B: b/*.png), as basicsr's
                 calculate_fid_folder.py extracts them (cv2 → RGB → (x/255 − 0.5)/0.5 → model);
                 fid_ab: basicsr calculate_fid(mean, np.cov) of A's against B's features;
                 small_mu1/small_sigma1/small_mu2/small_sigma2/small_fid: a fixed 64-d case;
                 big_fid: the 2048-d case drawn from torch.Generator(BIG_SEED): X1 = randn(2304·2048)
                 as 2304×2048, X2 = randn(2304·2048) * float32(0.9) + float32(0.1) as 2304×2048, both
                 from the same generator in that order, statistics np.mean / np.cov(rowvar=False) of
                 the float64 arrays.
"""
import argparse
import glob
import math
import os
import sys
import time

import cv2
import numpy as np
import scipy
import torch
import torchvision

import basicsr
import basicsr.archs.inception as inception_module
from basicsr.metrics.fid import calculate_fid

SEED = 20151205
BIG_SEED = 2048
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'Tests/FaceRestoreEvaluationTests/Fixtures/fid')
CACHE = os.path.expanduser('~/.cache/facerestore-reference/fixtures')
VERSIONS = (f'basicsr {basicsr.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}, '
            f'numpy {np.__version__}, scipy {scipy.__version__}, opencv {cv2.__version__}')


def template_state_dict():
    """The fid_inception_v3 module's state dict layout, built without loading anything."""
    m = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=False)
    m.Mixed_5b = inception_module.FIDInceptionA(192, pool_features=32)
    m.Mixed_5c = inception_module.FIDInceptionA(256, pool_features=64)
    m.Mixed_5d = inception_module.FIDInceptionA(288, pool_features=64)
    m.Mixed_6b = inception_module.FIDInceptionC(768, channels_7x7=128)
    m.Mixed_6c = inception_module.FIDInceptionC(768, channels_7x7=160)
    m.Mixed_6d = inception_module.FIDInceptionC(768, channels_7x7=160)
    m.Mixed_6e = inception_module.FIDInceptionC(768, channels_7x7=192)
    m.Mixed_7b = inception_module.FIDInceptionE_1(1280)
    m.Mixed_7c = inception_module.FIDInceptionE_2(2048)
    return m.state_dict()


def random_state_dict():
    g = torch.Generator().manual_seed(SEED)
    sd, manifest = {}, []
    for key, t in template_state_dict().items():
        if key.endswith('num_batches_tracked'):
            sd[key] = torch.zeros_like(t)
            continue
        r = torch.randn(t.numel(), generator=g, dtype=torch.float32)
        if key.endswith('conv.weight'):
            fan = t.shape[1] * t.shape[2] * t.shape[3]
            v = r * math.sqrt(1.4 / fan)
        elif key.endswith('bn.weight'):
            v = r * 0.1 + 1
        elif key.endswith('bn.bias') or key.endswith('running_mean'):
            v = r * 0.1
        elif key.endswith('running_var'):
            v = r.abs() * 0.5 + 0.5
        elif key.startswith('fc.'):
            v = r * 0.01
        else:
            raise SystemExit(f'unexpected key {key}')
        sd[key] = v.reshape(t.shape).contiguous()
        manifest.append(f'{key} ' + ' '.join(str(d) for d in t.shape))
    return sd, manifest


def build_model(sd):
    # basicsr's own construction path; only its download is replaced by our random state dict.
    inception_module.load_url = lambda *a, **k: sd
    inception_module.LOCAL_FID_WEIGHTS = '/nonexistent/pt_inception.pth'
    return inception_module.InceptionV3([3], resize_input=True, normalize_input=False).eval()


def load_input(path):
    # basicsr SingleImageDataset (imfrombytes float32, img2tensor bgr2rgb, normalize mean=std=0.5).
    img = cv2.imdecode(np.frombuffer(open(path, 'rb').read(), np.uint8), cv2.IMREAD_COLOR).astype(np.float32) / 255.
    t = torch.from_numpy(img[:, :, ::-1].transpose(2, 0, 1).copy()).float()
    torchvision.transforms.functional.normalize(t, [0.5] * 3, [0.5] * 3, inplace=True)
    return t.unsqueeze(0)


def make_folder_b():
    os.makedirs(os.path.join(OUT, 'b'), exist_ok=True)
    a = cv2.imread(os.path.join(ROOT, 'examples/faces/astronaut.jpg'))
    h = cv2.imread(os.path.join(ROOT, 'examples/faces/grace_hopper.jpg'))
    g = cv2.imread(os.path.join(ROOT, 'examples/group.jpg'))
    cv2.imwrite(os.path.join(OUT, 'b/astronaut_128.png'), cv2.resize(a, (128, 128), interpolation=cv2.INTER_AREA))
    cv2.imwrite(os.path.join(OUT, 'b/hopper_flip_160x120.png'), cv2.resize(h[:, ::-1], (160, 120), interpolation=cv2.INTER_AREA))
    cv2.imwrite(os.path.join(OUT, 'b/group_crop_96.png'), cv2.resize(g[100:292, 250:442], (96, 96), interpolation=cv2.INTER_AREA))
    rng = np.random.RandomState(7)
    noise = np.clip(cv2.resize(a, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64) + rng.normal(0, 20, (64, 64, 3)), 0, 255)
    cv2.imwrite(os.path.join(OUT, 'b/astronaut_noisy_64.png'), noise.round().astype(np.uint8))


def stats(features):
    f = np.asarray(features, dtype=np.float64)
    return np.mean(f, 0), np.cov(f, rowvar=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--time', action='store_true', help='also time the reference (features per 512² image, FID at 2048)')
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CACHE, exist_ok=True)
    sd, manifest = random_state_dict()
    torch.save(sd, os.path.join(CACHE, 'fid_inception_random.pth'))
    with open(os.path.join(OUT, 'manifest.txt'), 'w') as f:
        f.write(f'VERSIONS {VERSIONS}\nSEED {SEED}\n' + '\n'.join(manifest) + '\n')
    model = build_model(sd)
    make_folder_b()

    folder_a = sorted(glob.glob(os.path.join(ROOT, 'examples/faces/*.jpg'))) + sorted(glob.glob(os.path.join(ROOT, 'examples/*.jpg')))
    folder_b = sorted(glob.glob(os.path.join(OUT, 'b/*.png')))
    out = {}
    feats = {}
    for path, prefix in [(p, 'a') for p in folder_a] + [(p, 'b') for p in folder_b]:
        name = prefix + '_' + os.path.relpath(path, ROOT).replace('/', '_').replace('.', '_')
        x = load_input(path)
        v = model(x)[0].view(1, -1)[0].numpy().astype(np.float32)
        feats.setdefault(prefix, []).append(v)
        out['feat_' + name] = v
        print(f'{name}: {tuple(x.shape)} mean |f| {np.abs(v).mean():.4f} max {np.abs(v).max():.4f}')
    mu_a, s_a = stats(feats['a'])
    mu_b, s_b = stats(feats['b'])
    out['fid_ab'] = np.array([calculate_fid(mu_a, s_a, mu_b, s_b)])
    print('fid A vs B', out['fid_ab'][0])

    rng = np.random.RandomState(64)
    for i in (1, 2):
        x = rng.normal(0.5 * i, 1.0, (200, 64)) @ rng.normal(0, 0.3, (64, 64))
        out[f'small_mu{i}'], out[f'small_sigma{i}'] = stats(x)
    out['small_fid'] = np.array([calculate_fid(out['small_mu1'], out['small_sigma1'], out['small_mu2'], out['small_sigma2'])])
    print('fid 64-d', out['small_fid'][0])

    g = torch.Generator().manual_seed(BIG_SEED)
    x1 = torch.randn(2304 * 2048, generator=g).reshape(2304, 2048)
    x2 = (torch.randn(2304 * 2048, generator=g) * 0.9 + 0.1).reshape(2304, 2048)
    m1, c1 = stats(x1.numpy())
    m2, c2 = stats(x2.numpy())
    t0 = time.time()
    out['big_fid'] = np.array([calculate_fid(m1, c1, m2, c2)])
    t_fid = time.time() - t0
    print(f'fid 2048-d {out["big_fid"][0]} ({t_fid:.2f} s in scipy)')
    np.savez(os.path.join(OUT, 'expected.npz'), **out)

    if args.time:
        torch.set_num_threads(int(os.environ.get('THREADS', '2')))
        x = load_input(os.path.join(ROOT, 'examples/faces/astronaut.jpg'))
        model(x)
        t0 = time.time()
        for _ in range(5):
            model(x)
        print(f'reference features: {(time.time() - t0) / 5 * 1000:.0f} ms per 512² image, {torch.get_num_threads()} threads')


if __name__ == '__main__':
    sys.exit(main())
