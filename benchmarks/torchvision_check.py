"""torchvision ResNet-50 under jit.compile against eager on a GPU: relative errors (2-norm) of eval logits in fp32
and bf16, and of the loss, parameters and batch-norm statistics after three SGD steps in train mode; then eval
time per batch of eager, torch.compile and ours in one process. The pass/fail version is
tests/executor/test_torchvision_cuda.py; this prints the numbers for benchmarks/NOTES.md."""
import copy
import time

import torch
import torchvision

import jit


def rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


def main() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True  # else two eager runs differ too (atomics in conv backward)
    torch.backends.cudnn.benchmark = False
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, torchvision {torchvision.__version__}")
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        eager = torchvision.models.resnet50(weights=None).cuda().to(dtype).eval()
        model = copy.deepcopy(eager)
        jit.reset()
        fast = jit.compile(model)
        x = torch.randn(8, 3, 224, 224, device="cuda", dtype=dtype)
        with torch.no_grad():
            t = time.perf_counter()
            first = fast(x)
            torch.cuda.synchronize()
            t = time.perf_counter() - t
            expected = eager(x)
            fast(x)  # the second call records a CUDA graph, the third replays it
            print(f"eval {dtype}: first call {t:.2f} s, logits rel err {rel(first, expected):.2e}, "
                  f"third call {rel(fast(x), expected):.2e}")
        eager.train(), model.train()
        opts = [torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (eager, model)]
        gen = torch.Generator(device="cuda").manual_seed(1)
        for step in range(3):
            x = torch.randn(8, 3, 224, 224, device="cuda", dtype=dtype, generator=gen)
            y = torch.randint(0, 1000, (8,), device="cuda", generator=gen)
            losses = []
            for net, opt in zip((eager, fast), opts):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(x).float(), y)
                loss.backward()
                opt.step()
                losses.append(loss.item())
            print(f"train {dtype} step {step}: loss eager {losses[0]:.5f} compiled {losses[1]:.5f}")
        worst = max(rel(pc, pe) for pe, pc in zip(eager.parameters(), model.parameters()))
        stats = max(rel(bc, be) for be, bc in zip(eager.buffers(), model.buffers()) if be.is_floating_point())
        print(f"train {dtype}: after 3 steps, worst parameter rel err {worst:.2e}, worst BN statistic {stats:.2e}")


def timed(fn, x, rounds: int = 30) -> float:
    """Median milliseconds per call (CUDA events), after warm-up calls."""
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def speed() -> None:
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    for dtype in (torch.bfloat16, torch.float32):
        model = torchvision.models.resnet50(weights=None).cuda().to(dtype).eval()
        x = torch.randn(32, 3, 224, 224, device="cuda", dtype=dtype)
        jit.reset()
        ours, theirs = jit.compile(model), torch.compile(model)
        with torch.no_grad():
            first = {}
            for name, fn in (("ours", ours), ("torch.compile", theirs)):
                t = time.perf_counter()
                fn(x)
                torch.cuda.synchronize()
                first[name] = time.perf_counter() - t
            e, o, t = timed(model, x), timed(ours, x), timed(theirs, x)
        print(f"eval {dtype} B32: eager {e:.2f} ms, ours {o:.2f} ms ({e / o:.2f}x, first call {first['ours']:.1f} s), "
              f"torch.compile {t:.2f} ms ({e / t:.2f}x, first call {first['torch.compile']:.1f} s)")


if __name__ == "__main__":
    main()
    speed()
