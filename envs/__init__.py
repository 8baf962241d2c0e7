"""The simulated household kitchen: PyBullet physics, the Panda, sensors, tasks and ground truth."""
