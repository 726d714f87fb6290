"""Metric names the samplers log in RLlib's env-runner results (``result["env_runners"]``).

Each is the value over the data collected since the last target-weight sync (the
behaviour buffer), logged once per ``sample()`` call.
"""

# Total variation between the buffer's empirical joint (state, joint action)
# distribution and the target's, over the states seen (absent where the buffer has
# more distinct joint states than ``behaviour["tv_max_states"]``: then every state
# is nearly unique and the number says nothing).
JOINT_TV = "sampler_joint_tv"
# The same on each agent's own (state, action) marginal: {agent id: TV}.
AGENT_TV = "sampler_agent_tv"
# Behaviour updates run, their mean completed epochs and mean KL(pi_theta || pi_phi)
# at their end (at the early stop, where the KL cut-off stopped them).
BEHAVIOUR_UPDATES = "sampler_behaviour_updates"
BEHAVIOUR_EPOCHS = "sampler_behaviour_epochs"
KL_AT_STOP = "sampler_kl_at_stop"
# Samples in the buffer when the metrics were logged.
BUFFER_SIZE = "sampler_buffer_size"
