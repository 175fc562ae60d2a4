"""EWC penalty math on a fixture small enough to check by hand."""
import torch

from chatbot.learning.ewc import EWC


class Quadratic(torch.nn.Module):
    """loss = sum((w * x - y)^2) over a batch; two trainable weights, one frozen."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
        self.frozen = torch.nn.Parameter(torch.tensor([5.0]), requires_grad=False)

    def forward(self, x, y):
        class Out:
            pass
        out = Out()
        out.loss = ((self.w * x - y) ** 2).sum()
        return out


def test_fisher_is_mean_squared_gradient_and_penalty_formula():
    model = Quadratic()
    batches = [{"x": torch.tensor([1.0, 1.0]), "y": torch.tensor([0.0, 0.0])},
               {"x": torch.tensor([2.0, 0.0]), "y": torch.tensor([0.0, 0.0])}]
    # d/dw of sum((w x - y)^2) = 2 x (w x - y):
    #   batch 1: [2*1*1, 2*1*2] = [2, 4];  batch 2: [2*2*2, 0] = [8, 0]
    #   Fisher = mean of squares = [(4 + 64) / 2, (16 + 0) / 2] = [34, 8]
    ewc = EWC(lam=0.5)
    ewc.before_training(model, batches)
    assert torch.allclose(ewc.fisher["w"], torch.tensor([34.0, 8.0]))
    assert "frozen" not in ewc.fisher
    assert float(ewc.penalty(model)) == 0.0  # at the anchor
    with torch.no_grad():
        model.w += torch.tensor([0.1, -0.2])
    # 0.5 * lam * (34 * 0.01 + 8 * 0.04) = 0.25 * 0.66 = 0.165
    assert abs(float(ewc.penalty(model)) - 0.165) < 1e-5
    model.w.grad = None
    ewc.penalty(model).backward()  # differentiable: lam * F * (w - w*) = 0.5 * [3.4, -1.6]
    assert torch.allclose(model.w.grad, torch.tensor([1.7, -0.8]), atol=1e-5)
    ewc.after_training(model)
    assert float(ewc.penalty(model)) == 0.0
