from .base import Layer


class Residual(Layer):
    """A skip connection around a block: y = x + body(x).

    Backward: dx = dy + body.backward(dy) (the skip path and the body's path summed); the
    body adds its parameter gradients as usual. A CycleGAN generator's residual block is
    ``Residual(Sequential(ReflectionPad2d(1), Conv2d(C, C, 3), InstanceNorm2d(C), ReLU(),
    ReflectionPad2d(1), Conv2d(C, C, 3), InstanceNorm2d(C)))``.

    Args:
        body: any layer whose output has its input's shape. Its parameters and buffers are
            named under ``body.`` (``body.1.weight``), as a PyTorch module with ``self.body``.
    Shape: (N, *) -> (N, *), the same shape.
    Attributes:
        needs_input_grad: passed to the body; when False, backward returns None and the body
            may skip the gradient of its own input (its parameter gradients are still added).
    """
    no_second_order_reason = ("the penalty's second-order pass walks a flat Sequential critic and cannot reach "
                              "inside a residual block")

    def __init__(self, body):
        if not isinstance(body, Layer):
            hint = " (a class: call it)" if isinstance(body, type) else ""
            raise TypeError(f"Residual: body must be an npgan layer, got {body!r}{hint}")
        self.body = body
        self.needs_input_grad = True

    @property
    def needs_input_grad(self):
        return self._needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, flag):
        self._needs_input_grad = bool(flag)
        self.body.needs_input_grad = bool(flag)

    def forward(self, x):
        fx = self.body.forward(x)
        if fx.shape != x.shape:
            raise ValueError(f"Residual: the body maps input shape {tuple(x.shape)} to {tuple(fx.shape)}; "
                             f"x + body(x) needs the same shape")
        return x + fx

    def backward(self, dout):
        dbody = self.body.backward(dout)                # adds the body's parameter gradients
        if not self._needs_input_grad:
            return None
        return dout + dbody

    def __repr__(self):
        return "Residual(\n  (body): " + repr(self.body).replace("\n", "\n  ") + "\n)"
