"""The toy method's tabular update: ``step_scale * v``."""

from rllib_metamapg.tabular.updates import TabularUpdate


class ScaledPGTabular(TabularUpdate):
    def direction(self, field, theta, n):
        v, _, _ = field(theta, False)
        return self.settings.step_scale * v
