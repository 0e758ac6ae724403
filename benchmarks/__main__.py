"""``python -m benchmarks``: every workload against its peers, one table.

    python -m benchmarks [--size full|tiny] [--repeats 7] [--frameworks dl,torch,sklearn]
                         [--no-memory] [--dtype float32|float64]
"""

from __future__ import annotations

from . import harness

MODULES = ["benchmarks.w1_mlp", "benchmarks.w2_cnn", "benchmarks.w3_lstm",
           "benchmarks.w4_resnet", "benchmarks.digits_mlp"]

if __name__ == "__main__":
    harness.main(MODULES, description="dl against PyTorch CPU and scikit-learn")
