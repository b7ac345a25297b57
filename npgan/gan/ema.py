"""An exponential moving average of the generator's weights, for samples and evaluation.

A GAN's generator oscillates around a good solution; averaging its recent weights smooths the
oscillation out (Yazici et al. 2019; Karras et al.'s progressive GAN and StyleGAN sample from it).
After every generator update:

    w_avg = decay * w_avg + (1 - decay) * w          for every parameter
    BatchNorm's running statistics are copied         (they are statistics, not weights)

``decay`` 0.999 averages over roughly the last 1,000 steps. The average is a second model that
is never trained: training continues on G itself.
"""
import copy




class WeightAverage:
    """``model``: a copy of the generator holding the average (eval mode)."""

    def __init__(self, G, decay):
        if not 0 < decay < 1:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.model = copy.deepcopy(G).eval()
        for m in self.model.modules():
            m.cache = None

    def update(self, G):
        """Move the average towards G's current weights; copy its BatchNorm statistics."""
        for avg, p in zip(self.model.parameters(), G.parameters()):
            avg.data *= self.decay
            avg.data += (1 - self.decay) * p.data
        for (_, avg), (_, b) in zip(self.model.named_buffers(), G.named_buffers()):
            avg[...] = b

    def state_dict(self):
        return self.model.state_dict()

    def load_state_dict(self, state):
        self.model.load_state_dict(state)
        return self
