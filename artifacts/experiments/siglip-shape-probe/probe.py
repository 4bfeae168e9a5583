import sys, numpy as np, torch, copy
from januspro.checkpoint import load_model
from januspro.shapes.world import sample_scene, SceneSpec, SHAPES, COLORS
from januspro.shapes.render import render
torch.manual_seed(0)
path = "src/januspro/assets/janus-pro-shapes"
model = load_model(path) if True else None
model.eval()
rng = np.random.default_rng(0)
N = 3000
scenes = [sample_scene(rng, SceneSpec(n_objects=1), held_out=None) for _ in range(N)]
imgs = np.stack([render(s) for s in scenes]).astype(np.float32) / 255.0
px = (torch.from_numpy(imgs).permute(0, 3, 1, 2) - 0.5) / 0.5
ys = torch.tensor([SHAPES.index(s.objects[0].shape) for s in scenes])
yc = torch.tensor([list(COLORS).index(s.objects[0].color) for s in scenes])
def feats(vit):
    with torch.no_grad():
        return torch.cat([vit(px[i:i+500]) for i in range(0, N, 500)])
def probe(X, y, k, steps=400):
    X = X.reshape(len(X), -1).float(); X = (X - X[:2000].mean(0)) / (X[:2000].std(0) + 1e-5)
    W = torch.zeros(X.shape[1], k, requires_grad=True); b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.Adam([W, b], 1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(X[:2000] @ W + b, y[:2000]) + 1e-3 * (W**2).sum()
        opt.zero_grad(); loss.backward(); opt.step()
    return ((X[2000:] @ W + b).argmax(1) == y[2000:]).float().mean().item()
F = feats(model.vision)
rand = copy.deepcopy(model.vision)
for p in rand.parameters():
    if p.dim() > 1: torch.nn.init.normal_(p, std=0.02)
R = feats(rand)
A = torch.cat([model.aligner(F[i:i+500]).detach() for i in range(0, N, 500)])
print("feature", F.shape)
for name, X in [("trained mean", F.mean(1)), ("trained flat", F), ("aligner flat", A), ("random-init mean", R.mean(1)), ("random-init flat", R), ("pixels", px)]:
    print(f"{name:18s} shape {probe(X, ys, 4):.3f}  colour {probe(X, yc, 6):.3f}", flush=True)
