#!/usr/bin/env python3
"""Small PyTorch Lightning checkpoints for the pickle reader's tests (Tests/FaceRestoreWeightsTests/
Fixtures/lightning*.ckpt), written by torch.save itself. Run with the reference venv (torch 1.13,
numpy; nothing else is needed):

    ~/.cache/facerestore-reference/venv/bin/python scripts/make_lightning_fixtures.py

A Lightning `.ckpt` (RestoreFormer.ckpt, RestoreFormer++.ckpt) is a dict with `state_dict` (the
network under `vqvae.`, training losses under `loss.`), `epoch`, `global_step`,
`pytorch-lightning_version`, `callbacks`, `optimizer_states`, `lr_schedulers`, `hparams_name`,
`hyper_parameters` and, in newer Lightning, `loops`. Besides tensors its pickle holds objects the
reader does not allow-list. The real ones are used where they need no package beyond torch and
numpy: torch's Adam and StepLR states (tensors on storages in the archive), torch.optim.adam.Adam
as a class, argparse.Namespace and pathlib.PosixPath (NEWOBJ+BUILD, REDUCE), set, frozenset and
collections.defaultdict (REDUCE, then SETITEM), a numpy float64 (numpy.core.multiarray.scalar,
numpy.dtype REDUCE+BUILD, _codecs.encode), typing.Any. omegaconf's DictConfig and Lightning's
ModelCheckpoint are stand-in classes registered under their real module names; they pickle as the
real ones do at protocol 2 (omegaconf 2.3: NEWOBJ with no arguments, BUILD with `_metadata`,
`_parent` (a back reference) and `_content`; ContainerMetadata and Metadata the same, with
typing.Any, __builtin__.dict and a defaultdict inside; Lightning 1.0's `callbacks` keyed by the
ModelCheckpoint class).

Writes (deterministic; a few KB each):
  lightning.ckpt                  the layout above, pickle protocol 2 (torch.save's default)
  lightning_p4.ckpt               the same at pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME,
                                  EMPTY_SET/ADDITEMS, FROZENSET)
  lightning_opaque_state_dict.ckpt  `state_dict` is a pickled LightningModule object (stand-in
                                  RestoreFormer.models.vqgan_v1.RestoreFormerModel), not a dict
  lightning_opaque_storage.ckpt   `state_dict` holds a complex tensor: its storage type,
                                  torch.ComplexFloatStorage, is not allow-listed
  lightning_no_state_dict.ckpt    lightning.ckpt without its `state_dict`
State-dict values: tensor i (in the order of STATE below) holds (k + 1) * 0.25 * (-1)^k + i for
k = 0 … numel-1, in float32.
"""
import argparse
import collections
import os
import pathlib
import sys
import types
import typing
from collections import OrderedDict

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/FaceRestoreWeightsTests/Fixtures")

# name, shape (the test lists the same)
STATE = [("vqvae.encoder.conv_in.weight", (2, 3, 3, 3)), ("vqvae.encoder.conv_in.bias", (2,)),
         ("vqvae.quantize.embedding.weight", (4, 2)), ("vqvae.decoder.conv_out.weight", (3, 2, 1, 1)),
         ("vqvae.decoder.conv_out.bias", (3,)), ("loss.discriminator.main.0.weight", (1, 3, 1, 1)),
         ("loss.discriminator.main.0.bias", (1,))]


def module(name):
    """A module registered under `name` (and its parents), so pickle writes globals with that name."""
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    return sys.modules[name]


def stand_in(module_name, class_name):
    cls = type(class_name, (), {"__module__": module_name})
    setattr(module(module_name), class_name, cls)
    return cls


ContainerMetadata = stand_in("omegaconf.base", "ContainerMetadata")
Metadata = stand_in("omegaconf.base", "Metadata")
DictConfig = stand_in("omegaconf.dictconfig", "DictConfig")
AnyNode = stand_in("omegaconf.nodes", "AnyNode")
ModelCheckpoint = stand_in("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
RestoreFormerModel = stand_in("RestoreFormer.models.vqgan_v1", "RestoreFormerModel")


def metadata(cls, key, object_type):
    m = cls()
    m.__dict__.update(ref_type=typing.Any, object_type=object_type, optional=True, key=key, flags={}, flags_root=False,
                      resolver_cache=collections.defaultdict(dict))
    if cls is ContainerMetadata:
        m.__dict__.update(key_type=typing.Any, element_type=typing.Any)
    return m


def config(content, key=None, parent=None):
    """A DictConfig laid out as omegaconf 2.3 pickles one (its __getstate__ is its __dict__)."""
    node = DictConfig()
    node.__dict__.update(_metadata=metadata(ContainerMetadata, key, dict), _parent=parent, _content={})
    for k, v in content.items():
        if isinstance(v, dict):
            node._content[k] = config(v, k, node)
        else:
            leaf = AnyNode()
            leaf.__dict__.update(_metadata=metadata(Metadata, k, None), _parent=node, _val=v)
            node._content[k] = leaf
    return node


def values(i, shape):
    n = int(np.prod(shape))
    k = torch.arange(n, dtype=torch.float32)
    return ((k + 1) * 0.25 * torch.where(k % 2 == 0, 1.0, -1.0) + i).reshape(shape)


def checkpoint():
    torch.manual_seed(5)
    vqvae = torch.nn.ModuleDict({"conv_in": torch.nn.Conv2d(3, 2, 3), "embedding": torch.nn.Embedding(4, 2),
                                 "conv_out": torch.nn.Conv2d(2, 3, 1)})
    disc = torch.nn.Conv2d(3, 1, 1)
    opt_ae = torch.optim.Adam(vqvae.parameters(), lr=4.5e-6, betas=(0.5, 0.9))
    opt_disc = torch.optim.Adam(disc.parameters(), lr=4.5e-6, betas=(0.5, 0.9))
    x = torch.randn(1, 3, 5, 5)
    for opt, loss in ((opt_ae, lambda: (vqvae["conv_out"](vqvae["conv_in"](x)).pow(2).mean()
                                        + vqvae["embedding"].weight.pow(2).sum())),
                      (opt_disc, lambda: disc(x).pow(2).mean())):
        opt.zero_grad()
        loss().backward()
        opt.step()
    scheds = [torch.optim.lr_scheduler.StepLR(opt_ae, 1), torch.optim.lr_scheduler.StepLR(opt_disc, 1)]
    state = OrderedDict((name, values(i, shape)) for i, (name, shape) in enumerate(STATE))
    hyper = {
        "ddconfig": config({"ch": 64, "out_ch": 3, "ch_mult": {"0": 1, "1": 2}, "dropout": 0.0, "resolution": 512}),
        "lossconfig": config({"target": "RestoreFormer.modules.losses.vqperceptual.VQLPIPSWithDiscriminatorWithCompWithIdentity",
                              "params": {"disc_start": 10001, "disc_weight": 0.8}}),
        "ckpt_path": None, "ignore_keys": [], "image_key": "lq", "colorize_nlabels": None, "monitor": "val/rec_loss",
        "special_params_lr_scale": np.float64(10.0), "comp_params_lr_scale": 10, "schedule_step": [4000000],
        "args": argparse.Namespace(base=["configs/RestoreFormer.yaml"], gpus="0,1", logdir=pathlib.PosixPath("experiments")),
        "tags": {"face"}, "frozen_keys": frozenset({"vqvae.quantize"}),
        "counts": collections.defaultdict(int, {"restarts": 2}), "ref_type": typing.Any, "optimizer": torch.optim.Adam,
    }
    return {
        "epoch": 3, "global_step": 120, "pytorch-lightning_version": "1.0.8",
        "callbacks": {ModelCheckpoint: {"monitor": "val/rec_loss", "best_model_score": torch.tensor(0.0625),
                                        "best_model_path": "experiments/checkpoints/epoch=000002.ckpt",
                                        "dirpath": pathlib.PosixPath("experiments/checkpoints")}},
        "optimizer_states": [opt_ae.state_dict(), opt_disc.state_dict()],
        "lr_schedulers": [s.state_dict() for s in scheds],
        "state_dict": state,
        "hparams_name": "kwargs",
        "hyper_parameters": hyper,
        "loops": {"fit_loop": {"state_dict": {}, "epoch_loop.state_dict": {"_batches_that_stepped": 120},
                               "epoch_loop.batch_progress": {"total": {"ready": 120, "completed": 120}}}},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    ck = checkpoint()
    torch.save(ck, os.path.join(OUT, "lightning.ckpt"))
    torch.save(ck, os.path.join(OUT, "lightning_p4.ckpt"), pickle_protocol=4)
    model = RestoreFormerModel()
    model.__dict__.update(training=False, _parameters=OrderedDict(w=torch.nn.Parameter(values(0, (2, 2)))),
                          hparams=ck["hyper_parameters"]["ddconfig"])
    torch.save({"epoch": 3, "global_step": 120, "pytorch-lightning_version": "1.0.8", "state_dict": model},
               os.path.join(OUT, "lightning_opaque_state_dict.ckpt"))
    torch.save({"epoch": 3, "state_dict": OrderedDict([("vqvae.encoder.conv_in.bias", values(1, (2,))),
                                                        ("vqvae.window", torch.ones(2, dtype=torch.complex64))])},
               os.path.join(OUT, "lightning_opaque_storage.ckpt"))
    # A Lightning file saved without its weights (save_weights_only=False on a stripped copy):
    # everything but `state_dict`.
    torch.save({k: v for k, v in ck.items() if k != "state_dict"}, os.path.join(OUT, "lightning_no_state_dict.ckpt"))
    for name in ("lightning.ckpt", "lightning_p4.ckpt", "lightning_opaque_state_dict.ckpt", "lightning_opaque_storage.ckpt",
                 "lightning_no_state_dict.ckpt"):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
