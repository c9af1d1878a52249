# Small torch models for tests/onnx/onnx_lower_zoo_test.cc, each exercising an import fix of the
# model-zoo sweep: manual attention with split and a causal mask (Split, Where), a learned query
# expanded to the batch into nn.MultiheadAttention (Equal/Where on shape values, Expand),
# GroupNorm and InstanceNorm1d (InstanceNormalization), bilinear F.interpolate (Resize), chunk +
# F.normalize + x.var (Expand of a computed tensor, ReduceProd of shape values), a 1-D conv
# autoencoder and a tiny U-Net (ConvTranspose 1-D/2-D, grouped, output_padding; Max, Min),
# attention with torch.arange positions and causal mask (Range, GreaterOrEqual, Not, Gather of a
# constant), and reflect padding, PixelShuffle, x[:, ::4], flip (DepthToSpace, stepped Slice).
# Exported at opset 13 with a dynamic batch; inputs and torch's outputs as raw little-endian
# float32.
#   /usr/bin/python3 tests/data/zoo/gen.py tests/data/zoo
import os, sys, zlib
import torch
import torch.nn as nn
import torch.nn.functional as F

OUT = sys.argv[1] if len(sys.argv) > 1 else "."
BATCH = 4

class UpNet(nn.Module):  # tiny encoder-decoder: interpolate nearest and bilinear
    def __init__(self, mode):
        super().__init__()
        self.mode = mode
        self.down = nn.Conv2d(3, 8, 3, 2, 1)
        self.up = nn.Conv2d(8, 2, 3, 1, 1)

    def forward(self, x):
        y = F.relu(self.down(x))
        if self.mode == "nearest":
            y = F.interpolate(y, scale_factor=2, mode="nearest")
        else:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        return self.up(y)

class MHAPool(nn.Module):  # nn.MultiheadAttention with a learned query
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.q = nn.Parameter(torch.randn(1, 1, 32))
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        h = self.proj(x)
        q = self.q.expand(x.shape[0], -1, -1)
        y, _ = self.mha(q, h, h, need_weights=False)
        return self.fc(y[:, 0])

class SplitHeads(nn.Module):  # manual attention: reshape/transpose with batch symbolic, split, mask
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)
        self.o = nn.Linear(16, 4)
        self.register_buffer("mask", torch.tril(torch.ones(10, 10)))

    def forward(self, x):  # [B, 10, 16]
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(16, dim=-1)
        q = q.view(B, T, 2, 8).transpose(1, 2)
        k = k.view(B, T, 2, 8).transpose(1, 2)
        v = v.view(B, T, 2, 8).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / (8 ** 0.5)
        att = att.masked_fill(self.mask == 0, float("-inf"))
        att = torch.softmax(att, -1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        return self.o(y[:, -1])

class GNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.gn = nn.GroupNorm(4, 16)
        self.c2 = nn.Conv1d(16, 16, 3, padding=1)
        self.inorm = nn.InstanceNorm1d(16, affine=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        y = F.silu(self.gn(self.c1(x)))
        y = y.mean(2)  # [B, 16, W]
        y = F.relu(self.inorm(self.c2(y)))
        return self.fc(y.amax(-1))

class GLUNet(nn.Module):  # gated conv (F.glu, chunk), F.normalize, x.var, clamp
    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 32, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        a, b = self.c(x).chunk(2, dim=1)
        y = a * torch.sigmoid(b)
        y = F.glu(torch.cat([y, y.flip(1)], 1), dim=1) if False else y
        y = F.normalize(y.mean(-1), dim=1)
        return self.fc(y) + y.var(1, keepdim=True).clamp(max=1.0)


class AE1d(nn.Module):  # 1-D conv autoencoder for sensor anomaly detection
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(3, 16, 5, 2, 2), nn.ReLU(), nn.Conv1d(16, 8, 3, 2, 1),
                                 nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose1d(8, 16, 3, 2, 1, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose1d(16, 3, 5, 2, 2, output_padding=1))

    def forward(self, x):
        return self.dec(self.enc(x))

class UNetTiny(nn.Module):  # ConvTranspose2d up path, skip concat, grouped transpose, max/min
    def __init__(self):
        super().__init__()
        self.d1 = nn.Conv2d(3, 8, 3, 1, 1)
        self.d2 = nn.Conv2d(8, 16, 3, 2, 1)
        self.up = nn.ConvTranspose2d(16, 8, 2, 2)
        self.upg = nn.ConvTranspose2d(16, 8, 3, 2, 1, output_padding=1, groups=2, dilation=1)
        self.out = nn.Conv2d(24, 2, 1)

    def forward(self, x):
        a = F.relu(self.d1(x))
        b = F.relu(self.d2(a))
        u = torch.cat([self.up(b), a, self.upg(b)], 1)
        y = self.out(u)
        return torch.maximum(torch.minimum(y, x[:, :2]), -y)


class CausalAttention(nn.Module):  # arange positions (Range, Gather), arange causal mask
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 48)
        self.pos = nn.Embedding(16, 8)
        self.fc = nn.Linear(16, 3)

    def forward(self, x):  # [B, T=12, 8]
        T = x.shape[1]
        h = x + self.pos(torch.arange(T))
        q, k, v = self.qkv(h).chunk(3, -1)
        B = x.shape[0]
        q, k, v = [t.reshape(B, T, 2, 8).transpose(1, 2) for t in (q, k, v)]
        i = torch.arange(T)
        mask = i[:, None] >= i[None, :]
        att = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
        y = torch.softmax(att.masked_fill(~mask, float("-inf")), -1) @ v
        y = y.transpose(1, 2).reshape(B, T, 16)
        return self.fc(y[:, -1])

class Misc(nn.Module):  # reflect pad, mish, pixel shuffle, x[:, ::4], flip
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.ps = nn.PixelShuffle(2)
        self.pool = nn.AvgPool2d(4)  # AdaptiveAvgPool2d(2) does not export after a reflect pad
        self.fc = nn.Linear(8 + 2 * 4, 4)

    def forward(self, x):  # [B, 3, 8, 8]
        y = self.c(x)
        y = y * torch.tanh(F.softplus(y))  # mish
        a = self.pool(y).flatten(1)[:, ::4]  # [B, 8]
        b = F.avg_pool2d(self.ps(y), 8).flatten(1)  # [B, 2*4]
        z = torch.cat([a.flip(1), b], 1)
        return self.fc(z)


MODELS = {
    "split_heads": (SplitHeads, (10, 16)),
    "mha_pool": (MHAPool, (12, 8)),
    "groupnorm": (GNNet, (3, 8, 8)),
    "up_bilinear": (lambda: UpNet("bilinear"), (3, 16, 16)),
    "glu": (GLUNet, (4, 20)),
    "ae1d": (AE1d, (3, 32)),
    "unet_tiny": (UNetTiny, (3, 16, 16)),
    "causal_attn": (CausalAttention, (12, 8)),
    "misc": (Misc, (3, 8, 8)),
}
for name, (ctor, shape) in MODELS.items():
    torch.manual_seed(zlib.crc32(name.encode()) % 1000)
    net = ctor().eval()
    x = torch.randn(BATCH, *shape)
    with torch.no_grad():
        y = net(x)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(net, x, path, input_names=["x"], output_names=["y"], opset_version=13,
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    x.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".in.f32"))
    y.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".out.f32"))
    print(name, list(x.shape), list(y.shape), os.path.getsize(path), "bytes")
