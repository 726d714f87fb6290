"""The toy method's tabular update: ``scale * v`` per arm."""

from rllib_metamapg.tabular.updates import TabularUpdate


class ScaledPGTabular(TabularUpdate):
    def __init__(self, arms, runs, settings):
        super().__init__(arms, runs, settings)
        self.scale = self.per_row([a.option("scale", 1.0) for a in self.arms])

    def direction(self, field, theta, n):
        v, _, _ = field(theta, False)
        return self.scale * v
