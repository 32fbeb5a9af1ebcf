"""A DAG task prints none of TensorFlow's C++ lines or Beam's start-up warnings: Airflow logs a task's stderr as errors.

In a fresh process, as Airflow runs a task: TensorFlow fixes its C++ log level when it loads, so
in a test process that loaded it earlier (the rest of the suite) nothing could be judged.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

NATIVE_CHATTER = ("cuInit", "E0000", "I0000", "absl::InitializeLog", "apitools", "semi_persistent_directory")

TASK = """
    import sys
    import tempfile
    from pathlib import Path

    from dags import _retrain

    _retrain._quiet()  # what every heavy task does first
    import apache_beam  # noqa: F401  (warns on import that an optional client is absent)
    import tensorflow as tf

    # The first op looks for CUDA; a TFRecord reader logs its buffer size; a tf.data map warns about its NodeDef.
    path = str(Path(tempfile.mkdtemp()) / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(b"x")
    ds = tf.data.TFRecordDataset([path]).map(tf.strings.length, num_parallel_calls=2)
    print(sum(int(n) for n in ds.as_numpy_iterator()) + int(tf.constant(40) + 1))
"""


@pytest.mark.tf
@pytest.mark.airflow
def test_a_task_prints_no_native_chatter() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as on a machine that sets none
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(TASK)], capture_output=True, text=True, env=env, timeout=600
    )
    assert (done.returncode, done.stdout.strip()) == (0, "42"), done.stderr
    chatter = [line for line in done.stderr.splitlines() if any(word in line for word in NATIVE_CHATTER)]
    assert chatter == []
