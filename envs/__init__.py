"""The simulated household kitchen: PyBullet physics, the Panda, sensors, tasks and ground truth.

Importing `envs` registers the gymnasium ids listed in `ENV_IDS`::

    import gymnasium as gym, envs
    env = gym.make("Embodia/Kitchen-v0", task="pick", obs_mode="rgbd")
"""

from gymnasium.envs.registration import register

from envs.state import BLOCKS, MOVABLE, OBJECT_IDS
from envs.tasks import TASK_NAMES

ENV_IDS: list[str] = []


def _register(env_id: str, **kwargs: object) -> None:
    register(id=env_id, entry_point="envs.household:HouseholdEnv", kwargs=kwargs)
    ENV_IDS.append(env_id)


_register("Embodia/Kitchen-v0")
for _task in TASK_NAMES:
    _title = "".join(part.capitalize() for part in _task.split("_"))
    _register(f"Embodia/Kitchen{_title}-v0", task=_task)
    _register(f"Embodia/Kitchen{_title}RGBD-v0", task=_task, obs_mode="rgbd")
_register("Embodia/KitchenAny-v0", task="any")
_register("Embodia/KitchenAnyRGBDTouch-v0", task="any", obs_mode="rgbd_touch")

__all__ = ["BLOCKS", "ENV_IDS", "MOVABLE", "OBJECT_IDS", "TASK_NAMES"]
