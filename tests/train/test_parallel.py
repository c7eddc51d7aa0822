"""HalfBatches: a minibatch's two halves through the model and a replica at once give the whole
minibatch's loss and gradients, with the replica in a worker process (the Trainer's) or a worker
thread; the Trainer uses it where it pays and the network allows, a run with it repeats itself
and resumes exactly, and what it cannot train is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from mnistlab.backend.fpu import flush_subnormals
from mnistlab.data import flatten, load_dataset, to_float
from mnistlab.errors import UsageError
from mnistlab.models.cnn import CNNClassifier
from mnistlab.nn import ReLU, build_cnn, build_mlp, get_loss
from mnistlab.optim import get_optimizer
from mnistlab.train import LambdaCallback, Trainer, TrainingInterrupted
from mnistlab.train import trainer as trainer_module
from mnistlab.train.parallel import HalfBatches, half_batches, worth_it


def _cnn(dtype="float64", dropout=0.0, batchnorm=False):
    return build_cnn([3, 4], [6], 5, kernel_size=3, dropout=dropout, batchnorm=batchnorm).build(
        (8, 8, 1), seed=1, dtype=dtype
    )


def _data(n, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 64)).astype(dtype), rng.integers(0, 5, n)


@pytest.mark.parametrize("worker", ["process", "thread"])
@pytest.mark.parametrize("n", [1, 2, 7, 16])
@pytest.mark.parametrize("loss_name", ["cross_entropy", "mse"])
def test_the_halves_give_the_whole_minibatchs_loss_and_gradients(n, loss_name, worker):
    x, y = _data(n)
    whole, split = _cnn(), _cnn()
    loss_fn = get_loss(loss_name)
    expected_loss = loss_fn.forward(whole.forward(x, training=True), y)
    expected_correct = loss_fn.count_correct(whole.forward(x, training=True), y)
    whole.backward(loss_fn.backward())
    with HalfBatches(split, get_loss(loss_name), worker=worker) as halves:
        loss, correct = halves.forward_backward(x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-12)
    assert correct == expected_correct
    np.testing.assert_allclose(split.params.grad, whole.params.grad, rtol=1e-10, atol=1e-14)


def test_the_replica_reads_the_models_weights_and_keeps_its_own_gradients():
    model = _cnn("float32")
    halves = HalfBatches(model, get_loss("cross_entropy"), worker="thread")
    replica = halves.replica
    assert np.shares_memory(replica.params.data, model.params.data)
    assert not np.shares_memory(replica.params.grad, model.params.grad)
    model.params.data += 1.0  # an optimizer's step, seen by the next half-batch
    for own, theirs in zip(model.params, replica.params, strict=True):
        np.testing.assert_array_equal(theirs.data, own.data)


@pytest.mark.parametrize("worker", ["process", "thread"])
def test_an_error_in_a_half_reaches_the_caller_after_both_halves_end(worker):
    model = _cnn()
    with HalfBatches(model, get_loss("cross_entropy"), worker=worker) as halves:
        x, y = _data(6)
        with pytest.raises(UsageError, match="x must be"):
            halves.forward_backward(x[:, :10], y)
        halves.forward_backward(x, y)  # still usable
    with pytest.raises(UsageError, match="inside `with HalfBatches"):
        halves.forward_backward(x, y)


@pytest.fixture
def two_cores(monkeypatch):
    """A second core for the trainer to split onto, whatever this machine has (two threads
    work on one core too)."""
    monkeypatch.setattr(trainer_module, "available_threads", lambda *libraries: 2)


def _fit(data_parallel, epochs=2, callbacks=(), checkpoint=None, resume=None, dropout=0.3):
    model = _cnn("float32", dropout=dropout)
    trainer = Trainer(
        model,
        get_optimizer("adam", model.parameters(), learning_rate=1e-2),
        callbacks=list(callbacks),
        data_parallel=data_parallel,
    )
    if checkpoint is not None:
        trainer.checkpoint_path = checkpoint
    if resume is not None:
        trainer.load_checkpoint(resume)
    x, y = _data(90, "float32", seed=3)
    trainer.fit(x, y, epochs=epochs, batch_size=20, seed=2)
    return trainer


def test_a_data_parallel_fit_repeats_itself_and_learns(two_cores):
    a, b = _fit(True), _fit(True)
    np.testing.assert_array_equal(a.model.params.data, b.model.params.data)
    serial = _fit(False)
    # the same training, the sums in another order (and dropout's masks drawn per half)
    assert a.history.records[-1]["loss"] < a.history.records[0]["loss"]
    assert not np.array_equal(a.model.params.data, serial.model.params.data)


def test_a_data_parallel_fit_interrupted_mid_epoch_resumes_exactly(tmp_path, two_cores):
    reference = _fit(True, epochs=3)

    def interrupt(trainer, loss):
        if trainer.step == 5 + 2:
            trainer.interrupt()

    checkpoint = tmp_path / "checkpoint.npz"
    with pytest.raises(TrainingInterrupted):
        _fit(True, epochs=3, callbacks=[LambdaCallback(on_loss=interrupt)], checkpoint=checkpoint)
    resumed = _fit(True, epochs=3, resume=checkpoint)
    np.testing.assert_array_equal(resumed.model.params.data, reference.model.params.data)


def test_the_trainer_splits_where_it_pays_and_the_network_allows(two_cores, monkeypatch):
    cnn, mlp = _cnn("float32"), build_mlp([8], 5).build(64, seed=0)
    assert worth_it(cnn, 2) and not worth_it(cnn, 1) and not worth_it(mlp, 2)
    assert not worth_it(cnn, 16)  # past two BLAS threads, halves at one each would idle cores

    def chosen(model, data_parallel, optimizer="adam", threads=2, batch_size=20):
        opt = get_optimizer(optimizer, model.parameters(), learning_rate=0.1)
        trainer = Trainer(model, opt, data_parallel=data_parallel)
        trainer.batch_size = batch_size
        return half_batches(trainer, threads, trainer_module.available_threads()) is not None

    assert chosen(cnn, None) and not chosen(cnn, None, threads=1) and not chosen(mlp, None)
    assert chosen(mlp, True) and chosen(cnn, True, threads=1)
    assert not chosen(cnn, False) and not chosen(cnn, True, batch_size=1)
    assert not chosen(_cnn("float32", batchnorm=True), None)
    # a convolution's kernel gradient is no GradientSink's: SGD on a CNN steps after backward
    assert chosen(cnn, None, optimizer="sgd")
    monkeypatch.setattr(trainer_module, "available_threads", lambda *libraries: 1)
    assert not chosen(cnn, True)  # no second core to take the other half


def test_what_cannot_be_split_is_refused_in_one_line():
    bn = _cnn("float32", batchnorm=True)
    with pytest.raises(UsageError, match="data_parallel=True cannot train this network: BatchNorm"):
        Trainer(bn, get_optimizer("adam", bn.parameters()), data_parallel=True)
    mlp = build_mlp([8], 5).build(64, seed=0)  # its weights' update rides in their GEMMs
    with pytest.raises(UsageError, match="fused SGD"):
        Trainer(mlp, get_optimizer("sgd", mlp.parameters()), data_parallel=True)
    cnn = _cnn("float32")
    for value in ("yes", 0, 1, np.False_):
        with pytest.raises(UsageError, match=f"data_parallel={value!r}"):
            Trainer(cnn, get_optimizer("adam", cnn.parameters()), data_parallel=value)
    with pytest.raises(UsageError, match="has a fixed dropout mask"):
        dropped = _cnn("float32", dropout=0.5)
        next(layer for layer in dropped.layers if layer.kind == "Dropout").fixed_mask = 1
        Trainer(dropped, get_optimizer("adam", dropped.parameters()), data_parallel=True)
    # set after construction, the choice is checked again when a fit begins
    trainer = Trainer(bn, get_optimizer("adam", bn.parameters()))
    trainer.data_parallel = True
    with pytest.raises(UsageError, match="cannot train this network: BatchNorm"):
        trainer.fit(*_data(8, "float32"), epochs=1, batch_size=4)
    with pytest.raises(UsageError, match="data_parallel"):
        CNNClassifier(data_parallel="yes", progress=False).fit(np.zeros((4, 8, 8)), [0, 1, 0, 1])


def test_the_worker_computes_subnormals_as_zero_as_the_trainer_does():
    """MXCSR belongs to a thread: the replica's half runs under the same flush as the model's."""
    from mnistlab.backend import fpu

    if not fpu.supported():
        pytest.skip("the flush is not supported on this platform")
    seen = []
    model = _cnn("float32")
    halves = HalfBatches(model, get_loss("cross_entropy"), worker="thread")
    tiny = np.float32(1e-39)  # subnormal
    original = halves.replica.forward

    def probe(x, training=False):
        seen.append(float(np.multiply(tiny, np.float32(1.0))))
        return original(x, training)

    halves.replica.forward = probe
    with flush_subnormals(), halves:
        halves.forward_backward(*_data(4, "float32"))
    assert seen == [0.0]


def test_a_cnn_estimator_passes_the_choice_on():
    data = load_dataset("digits")
    x = flatten(to_float(data.x_train, data.pixel_max))[:200]
    model = CNNClassifier(
        conv=(4,),
        hidden_layer_sizes=(8,),
        epochs=1,
        batch_size=50,
        progress=False,
        data_parallel=True,
    ).fit(x, data.y_train[:200])
    assert model.trainer_.data_parallel is True
    assert model.get_params()["data_parallel"] is True


def test_validation_inside_a_fit_with_halves_runs_on_every_core(two_cores, monkeypatch):
    """One BLAS thread per half during the steps; the validation pass between epochs is one
    forward of the model alone, so it gets both cores."""
    threads_seen = []
    model = _cnn("float32")
    original = model.blas.inference

    def inference():
        threads_seen.append((model.blas.threads, model.blas.cores))
        return original()

    monkeypatch.setattr(model.blas, "inference", inference)
    trainer = Trainer(model, get_optimizer("adam", model.parameters()), data_parallel=True)
    x, y = _data(40, "float32")
    trainer.fit(x, y, validation=(x[:10], y[:10]), epochs=1, batch_size=20)
    assert threads_seen == [(1, 2)]
    with model.blas.training(1, cores=2):
        with model.blas.inference():
            assert model.blas.threads == 2
        assert (model.blas.threads, model.blas.cores) == (1, 2)
    assert model.blas.library is None


class _Doubled(ReLU):
    """A user's layer that keeps its parent's kind: the registry would rebuild a ReLU."""

    def forward(self, x, training=False):
        return 2.0 * super().forward(x, training)

    def backward(self, grad_out):
        return super().backward(2.0 * grad_out)


class _HalfLoss(type(get_loss("cross_entropy"))):
    """A user's loss: not one the replica can be given."""


def test_a_network_or_loss_of_the_users_own_trains_whole(two_cores):
    model = _cnn("float32")
    model.layers[-2] = _Doubled()  # the ReLU before the output layer
    model.build((8, 8, 1), seed=1, dtype="float32")
    opt = get_optimizer("adam", model.parameters())
    trainer = Trainer(model, opt)
    trainer.batch_size = 20
    assert half_batches(trainer, 2, 2) is None
    with pytest.raises(UsageError, match=r"its layer 8 \(_Doubled\) is not one of mnistlab's"):
        Trainer(model, opt, data_parallel=True)
    plain = _cnn("float32")
    with pytest.raises(UsageError, match=r"its loss \(_HalfLoss\) is not one of mnistlab's"):
        Trainer(
            plain, get_optimizer("adam", plain.parameters()), loss=_HalfLoss(), data_parallel=True
        )


def test_the_worker_process_gives_the_worker_threads_numbers_bit_for_bit():
    """The same replica, seeds and arithmetic settings (one BLAS thread, subnormals flushed) in
    the worker process as in the worker thread: steps with dropout agree to the last bit."""
    x, y = _data(16, "float32")
    results = []
    for worker in ("process", "thread"):
        model = _cnn("float32", dropout=0.5)
        model.dropout_rng = np.random.default_rng(7)
        grads = []
        with (
            model.blas.training(1),
            flush_subnormals(),
            HalfBatches(model, get_loss("cross_entropy"), worker=worker) as halves,
        ):
            for _ in range(3):
                model.params.grad.fill(0)
                loss, correct = halves.forward_backward(x, y)
                grads.append((loss, correct, model.params.grad.copy()))
                model.params.data -= 0.1 * model.params.grad  # the next step sees new weights
        results.append(grads)
    for (loss_p, correct_p, grad_p), (loss_t, correct_t, grad_t) in zip(*results, strict=True):
        assert (loss_p, correct_p) == (loss_t, correct_t)
        np.testing.assert_array_equal(grad_p, grad_t)


def test_the_worker_process_is_reused_and_leaves_nothing_behind(tmp_path):
    import glob
    import tempfile

    from mnistlab.train import replica_process

    model = _cnn("float32")
    with HalfBatches(model, get_loss("cross_entropy")) as halves:
        first = halves._process
        halves.forward_backward(*_data(6, "float32"))
        # the shared memory has no name in any folder
        for folder in ("/dev/shm", tempfile.gettempdir()):
            assert glob.glob(f"{folder}/mnistlab-halves*") == []
    with HalfBatches(model, get_loss("cross_entropy")) as halves:
        assert halves._process is first  # an idle worker serves the next fit
    assert first.alive() and first in replica_process._IDLE
    with pytest.raises(UsageError, match="worker must be 'process' or 'thread'"):
        HalfBatches(model, get_loss("cross_entropy"), worker="gpu")


def test_a_fit_interrupted_during_a_step_leaves_the_worker_in_step():
    """A step sent and its reply never read (the fit ended by an interrupt meanwhile): the
    reply is read when the fit's HalfBatches closes, and the worker serves the next fit with
    replies that match its requests."""
    model = _cnn("float32")
    x, y = _data(6, "float32")
    with pytest.raises(KeyboardInterrupt):
        with HalfBatches(model, get_loss("cross_entropy")) as halves:
            worker = halves._process
            worker.send_step(x[3:], y[3:], 0.5, None)
            raise KeyboardInterrupt
    assert worker.alive() and worker._unanswered == 0
    with HalfBatches(model, get_loss("cross_entropy")) as halves:
        assert halves._process is worker
        loss, correct = halves.forward_backward(x, y)
    assert np.isfinite(loss) and 0 <= correct <= 6


def test_a_worker_that_dies_mid_fit_fails_the_step_in_one_line_and_is_not_reused():
    from mnistlab.train.replica_process import WorkerGone

    model = _cnn("float32")
    x, y = _data(6, "float32")
    with pytest.raises(WorkerGone, match="ended unexpectedly") as failure:
        with HalfBatches(model, get_loss("cross_entropy")) as halves:
            worker = halves._process
            worker._process.kill()
            worker._process.wait()
            halves.forward_backward(x, y)
    assert failure.value.exit_code == 1  # the command line's one line, not an internal error
    assert not worker.alive()
    with HalfBatches(model, get_loss("cross_entropy")) as halves:
        assert halves._process is not worker
        halves.forward_backward(x, y)


def test_a_worker_process_that_cannot_start_leaves_the_halves_to_a_thread(monkeypatch):
    from mnistlab.train import replica_process

    def refuse():
        raise OSError("no processes here")

    monkeypatch.setattr(replica_process.ReplicaProcess, "acquire", staticmethod(refuse))
    x, y = _data(8)
    whole, split = _cnn(), _cnn()
    loss_fn = get_loss("cross_entropy")
    loss_fn.forward(whole.forward(x, training=True), y)
    whole.backward(loss_fn.backward())
    with pytest.warns(RuntimeWarning, match="did not start .no processes here.; the second half"):
        with HalfBatches(split, get_loss("cross_entropy")) as halves:
            halves.forward_backward(x, y)
    assert halves.worker == "thread"
    np.testing.assert_allclose(split.params.grad, whole.params.grad, rtol=1e-10, atol=1e-14)


def test_a_data_parallel_mlp_trains_in_the_worker_process_too():
    """data_parallel=True on a network without convolutions (its input shape an int)."""
    model = build_mlp([8], 5).build(64, seed=0, dtype="float64")
    whole = build_mlp([8], 5).build(64, seed=0, dtype="float64")
    x, y = _data(10)
    loss_fn = get_loss("cross_entropy")
    loss_fn.forward(whole.forward(x, training=True), y)
    whole.backward(loss_fn.backward())
    with HalfBatches(model, get_loss("cross_entropy")) as halves:
        halves.forward_backward(x, y)
    np.testing.assert_allclose(model.params.grad, whole.params.grad, rtol=1e-10, atol=1e-14)


def test_a_forked_child_lets_go_of_the_parents_workers():
    """The child's copies of the sockets are closed, so that a worker still sees its socket
    close when the parent ends; the child starts workers of its own if it needs them."""
    import os

    from mnistlab.train import replica_process

    model = _cnn("float32")
    with HalfBatches(model, get_loss("cross_entropy")):
        pass
    assert replica_process._IDLE
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's exit handlers
        forgotten = not replica_process._IDLE and all(w._broken for w in replica_process._ALL)
        os._exit(0 if forgotten else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert replica_process._IDLE and replica_process._IDLE[0].alive()  # the parent's, intact
