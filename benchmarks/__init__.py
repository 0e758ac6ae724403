"""Benchmarks of `dl` against PyTorch CPU and scikit-learn, run by ``python -m benchmarks``.

One module per workload, each runnable alone (``python -m benchmarks.w1_mlp``):

- ``w1_mlp``: MLP 784-512-256-10 on 60,000 samples, batch 128, SGD (also against
  scikit-learn's ``MLPClassifier``);
- ``w2_cnn``: conv-relu-pool ×2 then affine, 10,000 images 1×28×28, batch 64, SGD;
- ``w3_lstm``: an LSTM (T 50, D 64, H 128) on batches of 32, forward and backward;
- ``digits_mlp``: the 64-256-10 MLP on scikit-learn's digits against ``MLPClassifier``,
  same architecture, batch size and epochs, with the test accuracy of both.

``harness`` holds what they share: paired, interleaved timing, the matmul peak, peak
memory in a fresh process and the table. ``bench_conv`` times conv2d and pooling alone.
"""
