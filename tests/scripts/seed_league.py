"""A league script as users have it: no `import rllib_addpolicy_fix` anywhere.

Ray 2.60 legacy stack, CartPole, two remote workers, a snapshot added with the seed's
copy_weights(). Prints one JSON line with the largest remote-vs-driver weight difference of the
snapshot and whether the fix got imported by the installed .pth.
"""

import json
import sys

import numpy as np
import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.env.multi_agent_env import make_multi_agent
from ray.rllib.policy.policy import PolicySpec


def copy_weights(algo, dst_policy_name):
    src = algo.get_policy("main")
    algo.add_policy(
        dst_policy_name,
        type(src),
        observation_space=src.observation_space,
        action_space=src.action_space,
        config=getattr(src, "config", {}).copy(),
    )
    algo.get_policy(dst_policy_name).set_weights(src.get_weights())


ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
config = (
    PPOConfig()
    .api_stack(enable_rl_module_and_learner=False, enable_env_runner_and_connector_v2=False)
    .environment(make_multi_agent("CartPole-v1"), env_config={"num_agents": 2})
    .framework("torch")
    .env_runners(num_env_runners=2, rollout_fragment_length=50)
    .training(train_batch_size=200, minibatch_size=100, num_epochs=1, model={"fcnet_hiddens": [16]})
    .multi_agent(
        policies={"main": PolicySpec()},
        policy_mapping_fn=lambda agent_id, *args, **kwargs: "main",
        policies_to_train=["main"],
    )
)
algo = config.build()
algo.train()
copy_weights(algo, "main_v1")
algo.train()
driver = algo.get_policy("main_v1").get_weights()
remote = algo.env_runner_group.foreach_env_runner(
    lambda worker: worker.get_policy("main_v1").get_weights(), local_env_runner=False
)
diff = max(float(np.max(np.abs(driver[k] - weights[k]))) for weights in remote for k in driver)
print(
    json.dumps(
        {
            "max_abs_diff": diff,
            "remote_workers": len(remote),
            "shim_imported": "rllib_addpolicy_fix" in sys.modules,
        }
    )
)
algo.stop()
ray.shutdown()
