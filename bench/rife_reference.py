#!/usr/bin/env python3
"""The PyTorch peer of `npm run bench:interpolate`: Practical-RIFE 4.25's flow network (the reference
code copied in scripts/fixtures/make_rife_fixture.py) at its published widths with random weights,
interpolating a video of --frames frames at --width x --height by --factor, as its
inference_video.py does at scale 1: the frames padded to a multiple of 128, K - 1 timesteps per
pair (run here as one batch, as our graph runs them), each frame moved to the card and the
results back to the host. One warm-up pair, then the fastest of --runs. Prints JSON.

  python3 bench/rife_reference.py [--frames 25] [--width 1024] [--height 576] [--factor 4] [--fp16] [--runs 2]
"""
import argparse
import importlib.util
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("rife_ref", os.path.join(here, "..", "scripts", "fixtures", "make_rife_fixture.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=25)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--height", type=int, default=576)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--fp16", action="store_true")
    p.add_argument("--json")
    a = p.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ref.device = dev  # the reference's warp makes its grid on this device
    torch.manual_seed(5)
    net = ref.IFNet([192, 128, 96, 64, 32]).eval().to(dev)
    dtype = torch.float16 if a.fp16 else torch.float32
    if a.fp16:
        net = net.half()
    torch.backends.cudnn.benchmark = True
    H, W, K = a.height, a.width, a.factor
    ph, pw = (H + 127) // 128 * 128, (W + 127) // 128 * 128
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    frames = [torch.stack([0.5 + 0.4 * torch.sin((xs + 3 * f) / (9 + c) + ys / 13) for c in range(3)]) for f in range(a.frames)]
    timestep = torch.tensor([(j + 1) / K for j in range(K - 1)], device=dev, dtype=dtype).view(K - 1, 1, 1, 1)

    def pair(i0, i1):
        img0 = F.pad(i0.to(dev, dtype).unsqueeze(0), (0, pw - W, 0, ph - H)).expand(K - 1, -1, -1, -1)
        img1 = F.pad(i1.to(dev, dtype).unsqueeze(0), (0, pw - W, 0, ph - H)).expand(K - 1, -1, -1, -1)
        _, _, merged = net(torch.cat((img0, img1), 1), timestep, [16, 8, 4, 2, 1])
        return (merged[4][:, :, :H, :W].float() * 255).round().byte().cpu()

    with torch.no_grad():
        t = time.perf_counter()
        pair(frames[0], frames[1])
        torch.cuda.synchronize()
        warm = time.perf_counter() - t
        times = []
        for _ in range(a.runs):
            t = time.perf_counter()
            for i in range(a.frames - 1):
                pair(frames[i], frames[i + 1])
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    out = {
        "what": f"Practical-RIFE 4.25 IFNet, random weights, {a.frames} frames {W}x{H} x{K}",
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "dtype": str(dtype).replace("torch.", ""),
        "warmUpPairS": round(warm, 3),
        "runsS": [round(x, 3) for x in times],
        "bestS": round(min(times), 3),
        "peakMiB": round(torch.cuda.max_memory_allocated() / 2**20) if dev.type == "cuda" else None,
    }
    print(json.dumps(out))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
