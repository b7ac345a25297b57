"""Image inpainting with npgan: Context Encoders, globally and locally consistent completion,
latent-optimisation inpainting, and the classical fills they are measured against.

    python -m npgan.inpaint train --dataset fashion-mnist --method context-encoder
    python -m npgan.inpaint eval runs/inpaint-fashion-mnist-context-encoder
    python -m npgan.inpaint fill --checkpoint runs/NAME --image in.png --mask mask.png --out out.png
    python -m npgan.inpaint panel runs/NAME --methods GLCIC "biharmonic fill" --out side_by_side.png

Modules: ``masks`` (hole masks, Yeh weights), ``datasets`` (Fashion-MNIST, MNIST, natural
crops, LFW), ``models`` (the networks), ``train`` (losses and loops), ``latent`` (z
optimisation), ``blend`` (Poisson blending, harmonic fill), ``baselines``, ``evaluate``
(PSNR/SSIM/L1 tables), ``fill`` (a user's image), ``runs`` (configs and checkpoints), ``plots`` (panels, loss plots).
See docs/INPAINTING.md for the results.
"""
from .baselines import biharmonic_fill, harmonic_fill, mean_fill
from .blend import poisson_blend
from .latent import latent_inpaint, latent_loss, optimise_latent
from .masks import contextual_weights, make_masks
from ..functional import composite
from .models import CompletionNetwork, ContextEncoder, GlobalLocalDiscriminator, PatchDiscriminator, network_input
from .train import completion_loss

__all__ = ["make_masks", "contextual_weights", "ContextEncoder", "PatchDiscriminator", "CompletionNetwork",
           "GlobalLocalDiscriminator", "network_input", "composite", "completion_loss",
           "latent_loss", "optimise_latent", "latent_inpaint", "poisson_blend", "harmonic_fill", "mean_fill",
           "biharmonic_fill"]
