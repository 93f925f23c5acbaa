"""Network architectures shipped with the zoo.

They are defined here, from their published descriptions, because
``torchvision`` is not a dependency of ``saliencelab``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "BasicBlock",
    "BreastCancerMLP",
    "ClutteredDigitsCNN",
    "DigitsCNN",
    "FacesCNN",
    "ResNet",
    "VGG",
    "resnet18_shaped",
    "vgg16_shaped",
]

RESNET18_LAYERS: tuple[int, ...] = (2, 2, 2, 2)
RESNET_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", *(256,) * 3, "M", *(512,) * 3, "M", *(512,) * 3, "M")
"""VGG-16 feature layout (Simonyan and Zisserman's configuration D): conv3x3 widths, ``"M"`` = 2x2 max pool."""


class DigitsCNN(nn.Module):
    """Small convolutional classifier for 1x8x8 digit images.

    Two 3x3 convolutions (1->16->32 channels, padding 1) with ReLU, a 2x2
    max pool, then a 512->64->10 multilayer perceptron. About 38k
    parameters.

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.

    Examples
    --------
    >>> import torch
    >>> model = DigitsCNN().eval()
    >>> model(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)`` for images ``x`` of ``(N, 1, 8, 8)``.

        Examples
        --------
        >>> import torch
        >>> DigitsCNN()(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 10])
        """
        return self.classifier(self.features(x))


class FacesCNN(nn.Module):
    """Small convolutional classifier for 1x25x25 grey images (faces or not).

    The architecture of the zoo model ``"lfw_cnn"``. ``features``: two blocks
    of 3x3 convolution (padding 1), ReLU and 2x2 max pool, 1->8->16 channels,
    25x25 -> 12x12 -> 6x6. ``classifier``: Flatten, Linear(16*6*6, 32), ReLU,
    Linear(32, num_classes). 19,778 parameters for two classes. As in
    :class:`DigitsCNN`, the convolutional part is one ``nn.Sequential`` named
    ``features``, so CAM layers are named ``"features.4"`` (the last ReLU, 12x12)
    or ``"features.5"`` (the last pool, 6x6).

    Parameters
    ----------
    num_classes : int, default 2
        Number of output logits (the zoo's label 1 is "face", 0 "non-face").

    Examples
    --------
    >>> import torch
    >>> model = FacesCNN().eval()
    >>> model(torch.zeros(3, 1, 25, 25)).shape
    torch.Size([3, 2])
    >>> sum(p.numel() for p in model.parameters())
    19778
    """

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 6 * 6, 32),
            nn.ReLU(),
            nn.Linear(32, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)`` for images ``x`` of ``(N, 1, 25, 25)``.

        Examples
        --------
        >>> import torch
        >>> FacesCNN()(torch.zeros(1, 1, 25, 25)).shape
        torch.Size([1, 2])
        """
        return self.classifier(self.features(x))


class ClutteredDigitsCNN(nn.Module):
    """Small convolutional classifier that finds and reads a digit on a 1x32x32 cluttered canvas.

    The architecture of the zoo model ``"cluttered_digits_cnn"``. ``features``:
    three 3x3 convolutions (padding 1) with ReLU, 1->16->32->64 channels, the
    first two followed by a 2x2 max pool (32x32 -> 16x16 -> 8x8); each output
    position of the last one sees an 18x18 window of the input, enough for an
    8x8 digit. ``classifier``: global max pooling over the 8x8 grid (the
    digit may be anywhere), Flatten, Linear(64, num_classes). 23,946
    parameters for ten classes. CAM layers: ``"features"`` or ``"features.7"``
    (the last ReLU, 64x8x8; the CAM methods' default layer is ``features``)
    or ``"features.6"`` (the last convolution).

    Parameters
    ----------
    num_classes : int, default 10
        Number of output logits.

    Examples
    --------
    >>> import torch
    >>> model = ClutteredDigitsCNN().eval()
    >>> model(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])
    >>> model.features(torch.zeros(1, 1, 32, 32)).shape, sum(p.numel() for p in model.parameters())
    (torch.Size([1, 64, 8, 8]), 23946)
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)`` for images ``x`` of ``(N, 1, 32, 32)``.

        Examples
        --------
        >>> import torch
        >>> ClutteredDigitsCNN()(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 10])
        """
        return self.classifier(self.features(x))


class BreastCancerMLP(nn.Module):
    """Small multilayer perceptron for standardised rows of 30 tabular features.

    The architecture of the zoo model ``"breast_cancer_mlp"``: ``layers`` is
    Linear(30, 32), ReLU, Linear(32, 16), ReLU, Linear(16, num_classes). 1,554
    parameters for two classes. It has no spatial layer, so the CAM methods do
    not apply to it.

    Parameters
    ----------
    in_features : int, default 30
        Features per row.
    num_classes : int, default 2
        Number of output logits (the zoo's label 0 is "malignant", 1 "benign").

    Examples
    --------
    >>> import torch
    >>> model = BreastCancerMLP().eval()
    >>> model(torch.zeros(4, 30)).shape, sum(p.numel() for p in model.parameters())
    (torch.Size([4, 2]), 1554)
    """

    def __init__(self, in_features: int = 30, num_classes: int = 2) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_features, 32),
            nn.ReLU(),
            nn.Linear(32, 16),
            nn.ReLU(),
            nn.Linear(16, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)`` for rows ``x`` of ``(N, in_features)``.

        Examples
        --------
        >>> import torch
        >>> BreastCancerMLP()(torch.zeros(1, 30)).shape
        torch.Size([1, 2])
        """
        return self.layers(x)


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    """Projection shortcut (He et al.'s option B) if the shape changes, else None."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """Residual basic block: two 3x3 conv + batch-norm layers and a shortcut.

    A single ``nn.ReLU(inplace=True)`` module, ``self.relu``, is applied twice
    (after the first batch norm and after the residual sum), as in the common
    reference implementation. Attribution code that hooks modules must cope
    with this reuse.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int, default 1
        Stride of the first convolution (2 halves the spatial size).

    Examples
    --------
    >>> import torch
    >>> block = BasicBlock(64, 128, stride=2).eval()
    >>> block(torch.zeros(1, 64, 8, 8)).shape
    torch.Size([1, 128, 4, 4])
    """

    expansion: int = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

        Examples
        --------
        >>> import torch
        >>> BasicBlock(8, 8)(torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 8, 4, 4])
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with basic blocks (He et al., 2016, "Deep Residual Learning").

    Stem: 7x7 stride-2 convolution, batch norm, ReLU, 3x3 stride-2 max pool.
    Then four stages of :class:`BasicBlock` with widths 64/128/256/512 (stages
    2-4 start with stride 2), global average pooling and a fully connected
    classifier. Use :func:`resnet18_shaped` for the 18-layer configuration.

    Parameters
    ----------
    layers : sequence of int
        Number of blocks in each of the four stages.
    num_classes : int, default 1000
        Number of output logits.
    in_channels : int, default 3
        Input image channels.

    Examples
    --------
    >>> import torch
    >>> net = ResNet((1, 1, 1, 1), num_classes=5).eval()
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 5])
    """

    def __init__(
        self,
        layers: tuple[int, ...] | list[int],
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if len(layers) != len(RESNET_WIDTHS):
            raise ValueError(f"layers must have {len(RESNET_WIDTHS)} entries, got {len(layers)}")
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_planes = 64
        for index, (width, blocks) in enumerate(zip(RESNET_WIDTHS, layers, strict=True), start=1):
            stride = 1 if index == 1 else 2
            setattr(self, f"layer{index}", _make_stage(in_planes, width, blocks, stride))
            in_planes = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits of shape ``(N, num_classes)``.

        Examples
        --------
        >>> import torch
        >>> ResNet((1, 1, 1, 1), num_classes=3)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    first = BasicBlock(in_planes, planes, stride)
    rest = [BasicBlock(planes, planes) for _ in range(blocks - 1)]
    return nn.Sequential(first, *rest)


def _init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convolutions, unit/zero batch norm affine parameters."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def resnet18_shaped(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """Build a randomly initialised ResNet-18-shaped network.

    BasicBlock x [2, 2, 2, 2] with widths 64/128/256/512; 11,689,512
    parameters for 1000 classes and 3 input channels, the standard
    ResNet-18 count. The weights are random (drawn from the global torch
    RNG), so the network is meant for benchmarks, not for predictions.

    Parameters
    ----------
    num_classes : int, default 1000
        Number of output logits.
    in_channels : int, default 3
        Input image channels.

    Returns
    -------
    ResNet
        The network, in training mode (call ``.eval()`` for inference).

    Examples
    --------
    >>> import torch
    >>> net = resnet18_shaped(num_classes=10).eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 10])
    """
    return ResNet(RESNET18_LAYERS, num_classes=num_classes, in_channels=in_channels)


class VGG(nn.Module):
    """VGG network (Simonyan & Zisserman, 2015, "Very Deep Convolutional Networks").

    ``features``: for each entry of ``layout``, a 3x3 convolution (padding 1,
    with bias) followed by ``nn.ReLU(inplace=True)``, or ``"M"`` for a 2x2
    stride-2 max pool. Then ``avgpool`` (``AdaptiveAvgPool2d(7)``) and
    ``classifier``: Flatten, Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096,
    4096), ReLU, Dropout, Linear(4096, num_classes). Module names and order are
    torchvision's, so a torchvision VGG state dict loads into it. Use
    :func:`vgg16_shaped` for the 16-layer configuration.

    Parameters
    ----------
    layout : sequence of int or "M"
        Convolution widths and max pools, in order.
    num_classes : int, default 1000
        Number of output logits.
    in_channels : int, default 3
        Input image channels.

    Examples
    --------
    >>> import torch
    >>> net = VGG((8, "M", 16, "M"), num_classes=4).eval()
    >>> net(torch.zeros(1, 3, 16, 16)).shape
    torch.Size([1, 4])
    >>> net.classifier[1].in_features
    784
    """

    def __init__(
        self,
        layout: tuple[int | str, ...] | list[int | str],
        num_classes: int = 1000,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            elif isinstance(item, int) and not isinstance(item, bool) and item > 0:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
            else:
                raise ValueError(f'layout entries must be positive ints or "M", got {item!r}')
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(7)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(4096, num_classes),
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits of shape ``(N, num_classes)``.

        Examples
        --------
        >>> import torch
        >>> VGG((4, "M"), num_classes=3).eval()(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 3])
        """
        return self.classifier(self.avgpool(self.features(x)))


def vgg16_shaped(num_classes: int = 1000, in_channels: int = 3) -> VGG:
    """Build a randomly initialised VGG-16-shaped network.

    Thirteen 3x3 conv-ReLU layers [64, 64, M, 128, 128, M, 256 x3, M, 512 x3,
    M, 512 x3, M], ``AdaptiveAvgPool2d(7)`` and the 25088-4096-4096-classes
    classifier with ReLU and dropout (see :class:`VGG`); 138,357,544 parameters
    for 1000 classes and 3 input channels, the standard VGG-16 count. The
    weights are random (drawn from the global torch RNG), initialised as
    :func:`resnet18_shaped`'s: He (fan-out) normal convolution weights, PyTorch's
    default initialisation for the convolution biases and the linear layers (so
    the biases are not zero). The network is meant for benchmarks, not for
    predictions. Any input of at least 32x32 pixels works (the adaptive pool
    makes the classifier's input 512x7x7).

    Parameters
    ----------
    num_classes : int, default 1000
        Number of output logits.
    in_channels : int, default 3
        Input image channels.

    Returns
    -------
    VGG
        The network, in training mode (call ``.eval()`` for inference).

    Examples
    --------
    >>> import torch
    >>> net = vgg16_shaped(num_classes=10).eval()
    >>> sum(p.numel() for p in net.parameters())
    134301514
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """
    return VGG(VGG16_LAYOUT, num_classes=num_classes, in_channels=in_channels)
