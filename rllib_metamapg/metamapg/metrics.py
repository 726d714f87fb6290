"""Names of the metrics MetaMAPG's learner logs per module (``result["learners"][mid]``).

One definition, so the learner, the callbacks, the docs' table and the tests all
use the same keys (RLlib keeps its own in ``ray.rllib.utils.metrics``).
"""

PG_NORM = "metamapg_pg_norm"                # |policy gradient| (per step)
OWN_NORM = "metamapg_own_norm"              # |own term|
PEER_NORM = "metamapg_peer_norm"            # |peer term|
COS_PEER_PG = "metamapg_cos_peer_pg"        # cosine(peer term, policy gradient)
CLIPPED = "metamapg_clipped"                # 1 when the norm cap shortened the correction
CORRECTION_NORM = "metamapg_correction_norm"  # |applied step| (after cap and lambda)
LAMBDA = "metamapg_lambda"                  # correction strength of this update
SPLIT = "metamapg_split"                    # 1 when the stages used disjoint episodes

ALL = (PG_NORM, OWN_NORM, PEER_NORM, COS_PEER_PG, CLIPPED, CORRECTION_NORM, LAMBDA, SPLIT)
