"""Networks written the way researchers write them, outside the package (no ``feature_info``).

Each follows the habits of a common family, so the toolkit is tried on code it has never seen:

- :class:`ResNet` (``resnet18``, ``resnet50``): 7x7 stem, max-pool, BasicBlocks with
  ``ReLU(inplace=True)``, ``out += identity`` and a final ``F.relu(out, inplace=True)``;
  Bottlenecks with the stride in the 3x3 conv and one ReLU module called three times.
- :class:`VGG` (``vgg16``): one ``features`` Sequential (conv-ReLU... max-pool), adaptive pool,
  classifier.
- :class:`MobileNetV2`: ReLU6, depthwise convolutions, inverted residuals whose stride sits in
  the middle of the block.
- :class:`DenseNet`: dense blocks concatenating every layer's output (``torch.cat``) and
  transitions (1x1 conv, average pool).
- :class:`FunctionalNet`: ``F.relu``, ``F.max_pool2d``, two branches joined by ``torch.cat``,
  and ``nn.Identity`` placeholders as the only modules after the functional calls.
- :class:`UNet`: encoder, decoder with transposed convolutions and skip concatenation.

``width`` divides every channel count (``width=1`` gives the published sizes) so that tests
stay fast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# -- ResNet ----------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return F.relu(out, inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes: int = 10, width: int = 1, in_chans: int = 3):
        super().__init__()
        self.inplanes = 64 // width
        self.conv1 = nn.Conv2d(in_chans, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64 // width, layers[0])
        self.layer2 = self._make_layer(block, 128 // width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256 // width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512 // width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 // width * block.expansion, num_classes)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


def resnet18(**kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet50(**kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


# -- VGG -------------------------------------------------------------------------------------
VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    def __init__(self, cfg=VGG16, num_classes: int = 10, width: int = 1, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(c, v // width, 3, padding=1), nn.ReLU(inplace=True)]
                c = v // width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(c * 7 * 7, 256), nn.ReLU(True), nn.Dropout(), nn.Linear(256, num_classes)
        )

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg16(**kwargs) -> VGG:
    return VGG(VGG16, **kwargs)


# -- MobileNetV2 -----------------------------------------------------------------------------
class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = cin * expand_ratio
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),  # depthwise
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    # t (expansion), c (channels), n (blocks), s (stride of the first block)
    SETTINGS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                [6, 160, 3, 2], [6, 320, 1, 1]]  # fmt: skip

    def __init__(self, num_classes: int = 10, width: int = 1, in_chans: int = 3) -> None:
        super().__init__()
        c = 32 // width
        features: list[nn.Module] = [ConvBNReLU(in_chans, c, stride=2)]
        for t, ch, n, s in self.SETTINGS:
            out = max(8, ch // width)
            for i in range(n):
                features.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
        self.last_channel = 1280 // width
        features.append(ConvBNReLU(c, self.last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


# -- DenseNet --------------------------------------------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(inputs, 1)
        x = self.conv1(self.relu1(self.norm1(x)))
        return self.conv2(self.relu2(self.norm2(x)))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n_layers: int, cin: int, growth: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(f"denselayer{i + 1}", DenseLayer(cin + i * growth, growth))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(cin)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)


class DenseNet(nn.Module):
    def __init__(self, growth: int = 12, blocks=(4, 4, 4), num_classes: int = 10,
                 in_chans: int = 3) -> None:  # fmt: skip
        super().__init__()
        c = 2 * growth
        self.features = nn.Sequential()
        self.features.add_module("conv0", nn.Conv2d(in_chans, c, 7, 2, 3, bias=False))
        self.features.add_module("norm0", nn.BatchNorm2d(c))
        self.features.add_module("relu0", nn.ReLU(inplace=True))
        self.features.add_module("pool0", nn.MaxPool2d(3, 2, 1))
        for i, n in enumerate(blocks):
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(n, c, growth))
            c += n * growth
            if i != len(blocks) - 1:
                self.features.add_module(f"transition{i + 1}", Transition(c, c // 2))
                c //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(c))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        out = F.relu(self.features(x), inplace=True)
        out = torch.flatten(F.adaptive_avg_pool2d(out, (1, 1)), 1)
        return self.classifier(out)


# -- functional calls and identity placeholders ----------------------------------------------
class FunctionalNet(nn.Module):
    """Convolutions as modules, everything else functional; ``nn.Identity`` marks the outputs
    after ``F.relu`` and ``torch.cat`` (the way hook points are left in hand-written code)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, 3, padding=1)
        self.act1 = nn.Identity()
        self.branch_a = nn.Conv2d(width, width, 1)
        self.branch_b = nn.Conv2d(width, width, 3, padding=1)
        self.merged = nn.Identity()
        self.conv3 = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.act3 = nn.Identity()
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.act1(F.relu(self.conv1(x)))
        x = F.max_pool2d(x, 2)
        x = torch.cat([F.relu(self.branch_a(x)), F.relu(self.branch_b(x))], dim=1)
        x = F.max_pool2d(self.merged(x), 2)
        x = self.act3(F.relu(self.conv3(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# -- U-Net -----------------------------------------------------------------------------------
class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
        )  # fmt: skip


class Down(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.MaxPool2d(2), DoubleConv(cin, cout))


class Up(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cin // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(cin, cout)

    def forward(self, x, skip):
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    def __init__(self, in_chans: int = 1, num_classes: int = 2, base: int = 8) -> None:
        super().__init__()
        self.inc = DoubleConv(in_chans, base)
        self.down1 = Down(base, base * 2)
        self.down2 = Down(base * 2, base * 4)
        self.down3 = Down(base * 4, base * 8)
        self.up1 = Up(base * 8, base * 4)
        self.up2 = Up(base * 4, base * 2)
        self.up3 = Up(base * 2, base)
        self.outc = nn.Conv2d(base, num_classes, 1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)


#: name -> (constructor of a small instance, input shape (C, H, W), expected inferred taps)
FAMILIES = {
    "resnet18": (
        lambda: resnet18(width=8),
        (3, 64, 64),
        ["relu", "layer1", "layer2", "layer3", "layer4"],
    ),
    "resnet50": (
        lambda: ResNet(Bottleneck, [2, 2, 2, 2], width=16),
        (3, 64, 64),
        ["relu", "layer1", "layer2", "layer3", "layer4"],
    ),
    "vgg16": (
        lambda: vgg16(width=16),
        (3, 64, 64),
        ["features.3", "features.8", "features.15", "features.22", "features.29"],
    ),
    "mobilenet_v2": (
        lambda: MobileNetV2(width=4),
        (3, 64, 64),
        ["features.1", "features.3", "features.6", "features.13", "features.18"],
    ),
    "densenet": (
        lambda: DenseNet(growth=4, blocks=(2, 2, 2)),
        (3, 64, 64),
        [
            "features.relu0",
            "features.transition1.conv",
            "features.transition2.conv",
            "features.norm5",
        ],
    ),  # fmt: skip
    "functional": (lambda: FunctionalNet(width=8), (3, 32, 32), ["act1", "merged", "act3"]),
    "unet": (
        lambda: UNet(base=4),
        (1, 32, 32),
        ["inc", "down1", "down2", "down3", "up1", "up2", "up3"],
    ),
}
