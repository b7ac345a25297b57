"""Layers with hand-written forward and backward passes, PyTorch's names and defaults."""
from .activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .base import Layer, Parameter, Sequential, frozen, no_input_grad
from .batchnorm import (BatchNorm1d, BatchNorm2d, BatchNormBase, ConditionalBatchNorm, SyncBatchNorm,
                        SyncBatchNorm1d, SyncBatchNorm2d, convert_sync_batchnorm)
from .channelwise import ChannelwiseLinear
from .conv import Conv2d, ConvTranspose2d
from .dropout import Dropout
from .instancenorm import InstanceNorm2d
from .linear import Linear
from .minibatch import MinibatchStdDev
from .padding import ReflectionPad2d
from .pooling import AvgPool2d, MaxPool2d
from .residual import Residual
from .shape import Flatten, Reshape, Unflatten, Upsample
from .spectral_norm import SpectralNorm

__all__ = ["Layer", "Parameter", "Sequential", "frozen", "no_input_grad", "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "BatchNormBase", "ConditionalBatchNorm",
           "ReLU", "LeakyReLU", "ELU", "Tanh", "Sigmoid", "Flatten", "Unflatten", "Reshape", "Upsample",
           "AvgPool2d", "MaxPool2d", "Dropout", "ChannelwiseLinear",
           "SpectralNorm", "InstanceNorm2d", "ReflectionPad2d", "Residual", "MinibatchStdDev",
           "SyncBatchNorm", "SyncBatchNorm1d", "SyncBatchNorm2d", "convert_sync_batchnorm"]
