"""Tiny random-weight models of the real architectures, and the weight calibration applied to them.

Every builder seeds torch's global generator first, so the weights depend only on the seed.
Calibration (deterministic, done once before export, so ONNX and PyTorch share the same weights):
  * UNet: conv_out weight/bias scaled so the predicted noise has std ~1 on a typical input
    (random latents, t=500, text embeddings from the tiny text encoder).
  * VAE encoder: quant_conv rows producing the posterior mean scaled so mean*scaling_factor has std ~0.8;
    rows producing logvar multiplied by 0.1 with bias -3.0 (posterior std ~0.22, so a sampled draw is
    visibly different from the mean but does not drown it).
  * VAE decoder: conv_out scaled so decode(z / scaling_factor) for z ~ N(0,1) has std ~0.45 (mostly inside
    [-1, 1]; the pipelines' clamp(x/2+0.5, 0, 1) still clips some values).
  * Text encoders: unchanged (transformers' own init, initializer_range 0.02).
"""
import torch

CLIP_VOCAB = 49408
TEXT_HIDDEN = 3  # 49408 x 3 float32 token embedding = 593 KB per text encoder (size budget)


def _seed(s):
    torch.manual_seed(s)


def clip_text_config(hidden_act="quick_gelu", projection_dim=4, pad_token_id=1):  # projection_dim: text_embeds size
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=CLIP_VOCAB,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=8,
        num_hidden_layers=2,
        num_attention_heads=1,
        max_position_embeddings=77,
        hidden_act=hidden_act,
        layer_norm_eps=1e-5,
        projection_dim=projection_dim,
        # the hub configs of SD1.x / SDXL text encoders keep CLIP's legacy ids (eos_token_id 2 ->
        # pooled output at argmax(input_ids)), so the tiny ones do too
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=pad_token_id,
    )


def text_encoder(seed, with_projection=False, hidden_act="quick_gelu"):
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    _seed(seed)
    cfg = clip_text_config(hidden_act=hidden_act)
    m = (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(cfg)
    return m.eval()


def vae(seed, scaling_factor, force_upcast=False):
    from diffusers import AutoencoderKL

    _seed(seed)
    m = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[4, 8, 8, 8],
        layers_per_block=1,
        act_fn="silu",
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=scaling_factor,
        force_upcast=force_upcast,
    ).eval()
    return m


def unet_sd1(seed):
    from diffusers import UNet2DConditionModel

    _seed(seed)
    return UNet2DConditionModel(
        sample_size=4,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=2,
    ).eval()


def unet_sdxl(seed, projection_dim=4):
    from diffusers import UNet2DConditionModel

    _seed(seed)
    addition_time_embed_dim = 4
    return UNet2DConditionModel(
        sample_size=4,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(8, 16),
        layers_per_block=1,
        norm_num_groups=4,
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        addition_embed_type="text_time",
        addition_time_embed_dim=addition_time_embed_dim,
        projection_class_embeddings_input_dim=projection_dim + 6 * addition_time_embed_dim,
        cross_attention_dim=2 * TEXT_HIDDEN,
    ).eval()


@torch.no_grad()
def calibrate_unet(unet, ehs, added=None, seed=7):
    g = torch.Generator("cpu").manual_seed(seed)
    c = unet.config
    x = torch.randn(2, c.in_channels, c.sample_size, c.sample_size, generator=g)
    t = torch.tensor([500.0])
    kw = {"added_cond_kwargs": added} if added is not None else {}
    out = unet(x, t, encoder_hidden_states=ehs.expand(2, -1, -1), **kw).sample
    s = 1.0 / float(out.std())
    unet.conv_out.weight.mul_(s)
    unet.conv_out.bias.mul_(s)
    out2 = unet(x, t, encoder_hidden_states=ehs.expand(2, -1, -1), **kw).sample
    return {"unet_conv_out_scale": s, "eps_std_after": float(out2.std())}


@torch.no_grad()
def calibrate_vae(vae, seed=11):
    g = torch.Generator("cpu").manual_seed(seed)
    sf = vae.config.scaling_factor
    lc = vae.config.latent_channels
    img = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    conv = vae.quant_conv  # 1x1 conv after the encoder: output channels [mean(4), logvar(4)]
    h = vae.encode(img).latent_dist
    s_mean = 0.8 / (float(h.mean.std()) * sf)
    conv.weight[:lc].mul_(s_mean)
    conv.bias[:lc].mul_(s_mean)
    conv.weight[lc:].mul_(0.1)
    conv.bias[lc:].fill_(-3.0)
    z = torch.randn(2, lc, 4, 4, generator=g)
    d = vae.decode(z / sf).sample
    s_dec = 0.45 / float(d.std())
    vae.decoder.conv_out.weight.mul_(s_dec)
    vae.decoder.conv_out.bias.mul_(s_dec)
    h2 = vae.encode(img).latent_dist
    d2 = vae.decode(z / sf).sample
    return {
        "vae_encoder_mean_scale": s_mean,
        "vae_encoder_logvar_weight_scale": 0.1,
        "vae_encoder_logvar_bias": -3.0,
        "vae_decoder_conv_out_scale": s_dec,
        "posterior_mean_times_sf_std": float(h2.mean.std() * sf),
        "posterior_std_mean": float(h2.std.mean()),
        "decoded_std": float(d2.std()),
        "decoded_frac_outside_pm1": float((d2.abs() > 1).float().mean()),
    }
