"""torch.onnx.export of the tiny models in each layout of shared/reference/sd-onnx.md.

LAYOUT "convert": diffusers v0.35.2 scripts/convert_stable_diffusion_checkpoint_to_onnx.py (call arguments,
  names, dynamic axes, dummy dtypes and the weights.pb re-save copied from that script's logic).
LAYOUT "optimum122" / "optimum124": the I/O of optimum's exporter configs at tags v1.22.0 / v1.24.0
  (optimum/exporters/onnx/model_configs.py, optimum/exporters/utils.py, optimum/utils/input_generators.py);
  optimum itself is not run (it needs onnxruntime's Python package), its forward wrappers are reproduced.
All exports: opset 14, do_constant_folding=True, float32.
"""
import copy
import os
import shutil

import torch

OPSET = 14


def _export(model, args, path, input_names, output_names, dynamic_axes):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(model, _Fn):
        with model as m:
            return _export(m, args, path, input_names, output_names, dynamic_axes)
    torch.onnx.export(
        model,
        args,
        f=path,
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic_axes,
        do_constant_folding=True,
        opset_version=OPSET,
    )


class _Fn:
    """Patch model.forward for the export (as the convert script and optimum do), restore it afterwards, so
    initializer names are the model's own parameter names."""

    def __init__(self, owner, fn):
        self.owner, self.fn = owner, fn

    def __enter__(self):
        self.owner.forward = self.fn
        return self.owner

    def __exit__(self, *a):
        del self.owner.forward


# ---------------------------------------------------------------- convert script (1a)
@torch.no_grad()
def export_convert_sd1(folder, text_encoder, unet, vae, tokenizer):
    # exports work on deep copies: the modules the PyTorch pipelines run are never traced or patched
    text_encoder, unet, vae = copy.deepcopy(text_encoder), copy.deepcopy(unet), copy.deepcopy(vae)
    ids = tokenizer("A sample prompt", padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    _export(text_encoder, (ids.to(dtype=torch.int32),), f"{folder}/text_encoder/model.onnx",
            ["input_ids"], ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
    c = unet.config
    g = torch.Generator("cpu").manual_seed(0)  # the script uses the global RNG; the dummies do not matter
    unet_path = f"{folder}/unet/model.onnx"
    _export(
        unet,
        (torch.randn(2, c.in_channels, c.sample_size, c.sample_size, generator=g), torch.randn(2, generator=g),
         torch.randn(2, 77, text_encoder.config.hidden_size, generator=g), False),
        unet_path,
        ["sample", "timestep", "encoder_hidden_states", "return_dict"],
        ["out_sample"],
        {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}, "timestep": {0: "batch"},
         "encoder_hidden_states": {0: "batch", 1: "sequence"}},
    )
    import onnx

    m = onnx.load(unet_path)
    shutil.rmtree(os.path.dirname(unet_path))
    os.mkdir(os.path.dirname(unet_path))
    onnx.save_model(m, unet_path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.pb", convert_attribute=False)
    enc = _Fn(vae, lambda sample, return_dict=False: vae.encode(sample, return_dict)[0].sample())
    _export(enc, (torch.randn(1, 3, vae.config.sample_size, vae.config.sample_size, generator=g), False),
            f"{folder}/vae_encoder/model.onnx", ["sample", "return_dict"], ["latent_sample"],
            {"sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})
    dec = _Fn(vae, lambda latent_sample, return_dict=False: vae.decode(latent_sample, return_dict))
    _export(dec, (torch.randn(1, vae.config.latent_channels, c.sample_size, c.sample_size, generator=g), False),
            f"{folder}/vae_decoder/model.onnx", ["latent_sample", "return_dict"], ["sample"],
            {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}})


@torch.no_grad()
def export_convert_safety_checker(folder, checker, vae_sample_size=32):
    checker = copy.deepcopy(checker)
    vc = checker.config.vision_config
    g = torch.Generator("cpu").manual_seed(0)
    m = _Fn(checker, lambda clip_input, images: checker.forward_onnx(clip_input, images))
    _export(m, (torch.randn(1, vc.num_channels, vc.image_size, vc.image_size, generator=g),
                torch.randn(1, vae_sample_size, vae_sample_size, 3, generator=g)),
            f"{folder}/safety_checker/model.onnx", ["clip_input", "images"], ["out_images", "has_nsfw_concepts"],
            {"clip_input": {0: "batch", 1: "channels", 2: "height", 3: "width"},
             "images": {0: "batch", 1: "height", 2: "width", 3: "channels"}})


# ---------------------------------------------------------------- optimum
def _hidden_names(n_layers):
    return [f"hidden_states.{i}" for i in range(n_layers + 1)]


@torch.no_grad()
def export_optimum_text(folder, name, model, version, with_projection, output_hidden_states):
    model = copy.deepcopy(model)
    # dummy: optimum's DummyTextInputGenerator gives int64 ids [2, 16]; CLIPTextOnnxConfig (<=1.22) casts to int32,
    # CLIPTextWithProjectionOnnxConfig never does, and >=1.24 removed the cast (int64 everywhere)
    ids = torch.randint(0, 1000, (2, 16), generator=torch.Generator("cpu").manual_seed(0))
    int32 = (version == "optimum122") and not with_projection
    if int32:
        ids = ids.to(torch.int32)
    n = model.config.num_hidden_layers
    if with_projection:
        outs = ["text_embeds", "last_hidden_state"]
        fn = lambda input_ids: _flat(type(model).forward(model, input_ids, output_hidden_states=output_hidden_states), ["text_embeds", "last_hidden_state"], output_hidden_states)  # noqa: E731
        axes = {"text_embeds": {0: "batch_size", 1: "sequence_length"}, "last_hidden_state": {0: "batch_size", 1: "sequence_length"}}
    else:
        outs = ["last_hidden_state", "pooler_output"]
        fn = lambda input_ids: _flat(type(model).forward(model, input_ids, output_hidden_states=output_hidden_states), ["last_hidden_state", "pooler_output"], output_hidden_states)  # noqa: E731
        axes = {"last_hidden_state": {0: "batch_size", 1: "sequence_length"}, "pooler_output": {0: "batch_size"}}
    if output_hidden_states:
        for h in _hidden_names(n):
            axes[h] = {0: "batch_size", 1: "sequence_length"}
        outs += _hidden_names(n)
    axes = {"input_ids": {0: "batch_size", 1: "sequence_length"}, **axes}
    _export(_Fn(model, fn), (ids,), f"{folder}/{name}/model.onnx", ["input_ids"], outs, axes)
    model.config.save_pretrained(f"{folder}/{name}")


def _flat(out, keys, hidden):
    r = [getattr(out, k) for k in keys]
    if hidden:
        r += list(out.hidden_states)
    return tuple(r)


@torch.no_grad()
def export_optimum_unet(folder, unet, version, cross_dim, text_embeds_dim=None):
    unet = copy.deepcopy(unet)
    c = unet.config
    g = torch.Generator("cpu").manual_seed(0)
    sample = torch.randn(2, c.in_channels, c.sample_size, c.sample_size, generator=g)
    if version == "optimum122":
        t = torch.randint(0, 1000, (2,), generator=g, dtype=torch.int64)  # int64 [steps]
        t_axes = {0: "steps"}
    else:
        t = torch.tensor(500.0)  # float scalar, shape []
        t_axes = {}
    ehs = torch.randn(2, 16, cross_dim, generator=g)
    names = ["sample", "timestep", "encoder_hidden_states"]
    axes = {"sample": {0: "batch_size", 2: "height", 3: "width"}, "timestep": t_axes,
            "encoder_hidden_states": {0: "batch_size", 1: "sequence_length"}}
    if c.addition_embed_type == "text_time":
        te = torch.randn(2, text_embeds_dim, generator=g)
        ti = torch.randn(2, 6, generator=g)
        fn = lambda sample, timestep, encoder_hidden_states, text_embeds, time_ids: type(unet).forward(unet,  # noqa: E731
            sample, timestep, encoder_hidden_states,
            added_cond_kwargs={"text_embeds": text_embeds, "time_ids": time_ids}).sample
        args = (sample, t, ehs, te, ti)
        names += ["text_embeds", "time_ids"]
        axes.update({"text_embeds": {0: "batch_size"}, "time_ids": {0: "batch_size"}})
    else:
        fn = lambda sample, timestep, encoder_hidden_states: type(unet).forward(unet, sample, timestep, encoder_hidden_states).sample  # noqa: E731
        args = (sample, t, ehs)
    axes["out_sample"] = {0: "batch_size", 2: "height", 3: "width"}
    _export(_Fn(unet, fn), args, f"{folder}/unet/model.onnx", names, ["out_sample"], axes)
    unet.save_config(f"{folder}/unet")


@torch.no_grad()
def export_optimum_vae(folder, vae, version):
    vae = copy.deepcopy(vae)
    g = torch.Generator("cpu").manual_seed(0)
    x = torch.randn(2, 3, 32, 32, generator=g)
    if version == "optimum122":
        out = "latent_sample"
        fn = lambda sample: vae.encode(x=sample)["latent_dist"].sample()  # noqa: E731
    else:
        out = "latent_parameters"
        fn = lambda sample: vae.encode(x=sample)["latent_dist"].parameters  # noqa: E731
    _export(_Fn(vae, fn), (x,), f"{folder}/vae_encoder/model.onnx", ["sample"], [out],
            {"sample": {0: "batch_size", 2: "height", 3: "width"},
             out: {0: "batch_size", 2: "height_latent", 3: "width_latent"}})
    vae.save_config(f"{folder}/vae_encoder")
    z = torch.randn(2, vae.config.latent_channels, 4, 4, generator=g)
    _export(_Fn(vae, lambda latent_sample: vae.decode(z=latent_sample).sample), (z,),
            f"{folder}/vae_decoder/model.onnx", ["latent_sample"], ["sample"],
            {"latent_sample": {0: "batch_size", 2: "height_latent", 3: "width_latent"},
             "sample": {0: "batch_size", 2: "height", 3: "width"}})
    vae.save_config(f"{folder}/vae_decoder")
