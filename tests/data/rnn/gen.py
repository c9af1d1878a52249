# Exports small torch LSTM/GRU models (batch_first True/False, 2 layers, bidirectional, Linear
# head on the last step) to ONNX with a dynamic batch, and writes inputs + torch outputs as raw
# little-endian float32 for comparison with `edgeinfer run --out`.
import sys, os, json
import numpy as np
import torch
import torch.nn as nn

torch.manual_seed(0)
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/rnn"

class Net(nn.Module):
    def __init__(self, cell, inp, hid, layers, bidir, batch_first, out):
        super().__init__()
        self.batch_first = batch_first
        self.rnn = cell(inp, hid, num_layers=layers, bidirectional=bidir, batch_first=batch_first)
        self.head = nn.Linear(hid * (2 if bidir else 1), out)
    def forward(self, x):
        y, _ = self.rnn(x)
        last = y[:, -1] if self.batch_first else y[-1]
        return self.head(last)

CONFIGS = {
    "lstm_bf": (nn.LSTM, 3, 32, 2, False, True),
    "lstm_seq": (nn.LSTM, 3, 32, 2, False, False),
    "lstm_bidir_bf": (nn.LSTM, 3, 24, 2, True, True),
    "gru_bf": (nn.GRU, 3, 32, 2, False, True),
    "gru_bidir_seq": (nn.GRU, 3, 24, 1, True, False),
    "lstm_tiny_bf": (nn.LSTM, 3, 16, 1, False, True),
    "gru_tiny_bidir_bf": (nn.GRU, 3, 8, 2, True, True),
    "gru_big_bf": (nn.GRU, 8, 64, 2, False, True),
    "lstm_big_bf": (nn.LSTM, 8, 64, 2, False, True),
}
SEQ, BATCH = 20, 5
names = sys.argv[2:] or list(CONFIGS)
for name in names:
    cell, inp, hid, layers, bidir, bf = CONFIGS[name]
    net = Net(cell, inp, hid, layers, bidir, bf, 4).eval()
    shape = (BATCH, SEQ, inp) if bf else (SEQ, BATCH, inp)
    x = torch.randn(*shape)
    path = os.path.join(OUT, name + ".onnx")
    # edgeinfer's batch is axis 0 of an input: batch-first models get a dynamic batch, seq-first
    # ones (batch on axis 1) are exported with a static batch.
    dyn = {"x": {0: "batch"}, "y": {0: "batch"}} if bf else None
    torch.onnx.export(net, x, path, input_names=["x"], output_names=["y"], opset_version=14,
                      dynamic_axes=dyn)
    with torch.no_grad():
        y = net(x).numpy()
    x.numpy().astype("<f4").tofile(os.path.join(OUT, name + ".in.f32"))
    y.astype("<f4").tofile(os.path.join(OUT, name + ".out.f32"))
    print(name, "x", list(shape), "y", list(y.shape), os.path.getsize(path), "bytes")
