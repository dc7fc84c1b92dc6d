"""tinygrad_edu.parallel: the batch split over threads gives what one pass gives.

The conv and pooling ops split their images into parts run in threads (one per core, unless
TINYGRAD_EDU_THREADS or set_threads says otherwise; the BLAS held at one thread meanwhile).
Here the split is forced on small inputs (MIN_PART_BYTES = 1) and compared with the unsplit
result: the parts take whole units of fixed bounds, so the bits must be the same.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController

from tinygrad_edu import Tensor, parallel
from tinygrad_edu.nn import conv as conv_module
from tinygrad_edu.nn import pooling


@pytest.fixture
def split(monkeypatch):
    """A function running ``fn()`` unsplit and split into 3 parts (with the patch products
    in their smallest chunks and blocks); both results."""
    def run(fn):
        monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 1)  # one image per patch chunk
        monkeypatch.setattr(conv_module, "_ROW_BLOCK", 5)  # and many blocks of kept rows
        monkeypatch.setattr(parallel, "_chosen", [1])
        whole = fn()
        monkeypatch.setattr(parallel, "_chosen", [3])
        monkeypatch.setattr(parallel, "MIN_PART_BYTES", 1)
        parts = fn()
        monkeypatch.undo()
        return whole, parts
    return run


def _conv_run(x, w, b, stride, padding):
    """Forward and every gradient of conv2d for a fixed upstream gradient."""
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    args = (xt, wt) if b is None else (xt, wt, Tensor(b, requires_grad=True))
    y = conv_module.conv2d(*args, stride=stride, padding=padding)
    y.backward(np.random.default_rng(7).standard_normal(y.shape))
    return [y.data.copy()] + [a.grad.copy() for a in args]


@pytest.mark.parametrize("n, c, o, size, k, stride, pad, bias", [
    (7, 3, 4, 9, 3, 1, 1, True),  # several channels: chunked patches, transposed-conv ∂x
    (5, 1, 4, 8, 3, 1, 1, True),  # one input channel: the transposed patch matrix
    (6, 2, 3, 9, 3, 2, 1, False),  # stride 2: col2im ∂x
    (4, 1, 2, 6, 5, 1, 2, False),
])
def test_conv_split_equals_whole(split, n, c, o, size, k, stride, pad, bias):
    rng = np.random.default_rng(n * 10 + c)
    x = rng.standard_normal((n, c, size, size))
    w = rng.standard_normal((o, c, k, k))
    b = rng.standard_normal(o) if bias else None
    whole, parts = split(lambda: _conv_run(x, w, b, stride, pad))
    for a, p in zip(whole, parts):  # the same units and sums in the same order: same bits
        np.testing.assert_array_equal(p, a)


@pytest.mark.parametrize("n, c, size, k, stride", [(6, 3, 8, 2, 2), (5, 2, 9, 3, 2),
                                                    (4, 3, 7, 3, 1)])
def test_max_pool_split_equals_whole(split, n, c, size, k, stride):
    x = np.random.default_rng(n).standard_normal((n, c, size, size))
    x[x < 0] = 0  # ties (at zero) route to the first offset in both

    def run():
        xt = Tensor(x, requires_grad=True)
        y = pooling.max_pool2d(xt, kernel_size=k, stride=stride)
        y.backward(np.random.default_rng(7).standard_normal(y.shape))
        return [y.data.copy(), xt.grad.copy()]

    whole, parts = split(run)
    for a, p in zip(whole, parts):
        np.testing.assert_array_equal(p, a)


def test_parts_cover_the_range_in_order(monkeypatch):
    monkeypatch.setattr(parallel, "_chosen", [3])
    assert parallel.parts(10, 1 << 20) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.parts(10, 1 << 18) == [(0, 5), (5, 10)]  # 2.5 MB: two parts of >= 1 MB
    assert parallel.parts(10, 1000) == [(0, 10)]  # too little work to split
    assert parallel.parts(2, 1 << 30) == [(0, 1), (1, 2)]  # never an empty part
    monkeypatch.setattr(parallel, "_chosen", [1])
    assert parallel.parts(10, 1 << 20) == [(0, 10)]


def test_a_part_never_splits_again(monkeypatch):
    monkeypatch.setattr(parallel, "_chosen", [2])
    inner = parallel.parallel_parts(lambda i, a, b: parallel.parts(8, 1 << 20),
                                    [(0, 4), (4, 8)])
    assert inner == [[(0, 8)], [(0, 8)]]
    assert parallel.parts(8, 1 << 20) == [(0, 4), (4, 8)]  # the flag is only inside parts


def test_parallel_parts_results_in_order_and_threads():
    seen = []

    def work(i, a, b):
        seen.append(threading.current_thread() is threading.main_thread())
        return i, a, b

    assert parallel.parallel_parts(work, [(0, 2), (2, 5), (5, 6)]) == [(0, 0, 2), (1, 2, 5),
                                                                       (2, 5, 6)]
    assert sorted(seen) == [False, False, True]  # part 0 in the caller, two in workers


def test_an_error_in_a_worker_is_raised_after_every_part_ends():
    finished = []

    def work(i, a, b):
        if i == 1:
            raise ValueError("part 1 failed")
        finished.append(i)

    with pytest.raises(ValueError, match="part 1 failed"):
        parallel.parallel_parts(work, [(0, 1), (1, 2), (2, 3)])
    assert sorted(finished) == [0, 2]


def test_default_is_the_cores_whatever_the_blas(monkeypatch):
    monkeypatch.setattr(parallel, "_chosen", [None])
    blas = ThreadpoolController().select(user_api="blas")
    for n in (1, 2):
        with blas.limit(limits=n):
            assert parallel.threads() == parallel._cores()


class FakeBlas:
    """A BLAS controller that records the thread counts it is given."""

    def __init__(self, n):
        self.n, self.calls = n, []

    def get_num_threads(self):
        return self.n

    def set_num_threads(self, n):
        self.calls.append(n)
        self.n = n


def test_parts_run_with_the_blas_at_one_thread_then_give_it_back(monkeypatch):
    libs = [FakeBlas(2), FakeBlas(1), FakeBlas(4)]
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: libs)
    seen = parallel.parallel_parts(lambda i, a, b: [lib.n for lib in libs], [(0, 1), (1, 2)])
    assert seen == [[1, 1, 1], [1, 1, 1]]
    assert [lib.n for lib in libs] == [2, 1, 4]  # each library's own count, restored
    assert libs[1].calls == []  # one already at one thread is left alone
    with pytest.raises(ValueError, match="boom"):  # restored when a part fails, too
        parallel.parallel_parts(lambda i, a, b: (_ for _ in ()).throw(ValueError("boom")),
                                [(0, 1), (1, 2)])
    assert [lib.n for lib in libs] == [2, 1, 4]
    libs[0].calls.clear()  # one part too: the bits must not depend on the split
    assert parallel.parallel_parts(lambda i, a, b: libs[0].n, [(0, 2)]) == [1]
    assert libs[0].calls == [1, 2]


def test_holds_overlapping_in_two_threads_give_the_count_back_only_at_the_end(monkeypatch):
    """Thread A holds, B holds, A leaves: B's products must still see one thread; the count
    comes back when B leaves (the last one out), not when A does."""
    lib = FakeBlas(2)
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: [lib])
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def thread_a():
        with parallel.one_blas_thread():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def thread_b():
        a_in.wait(5)
        with parallel.one_blas_thread():
            b_in.set()
            a_out.wait(5)
            seen["inside after A left"] = lib.n
        seen["after B left"] = lib.n

    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {"inside after A left": 1, "after B left": 2}
    assert lib.calls == [1, 2]
    with parallel.one_blas_thread(), parallel.one_blas_thread():  # nested in one thread
        assert lib.n == 1
    assert lib.n == 2


def test_a_count_set_during_a_hold_is_the_one_given_back(monkeypatch):
    """runtime.set_blas_threads while another thread's ops hold the BLAS at one thread: the
    parts keep their one thread, and the count set is the one the BLAS gets at the end
    (not the count from before the hold); blas_threads reports it meanwhile."""
    from tinygrad_edu import runtime

    lib = FakeBlas(2)
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: [lib])
    for asked, after in ((3, 3), (1, 1)):
        lib.n = 2
        inside, leave = threading.Event(), threading.Event()

        def ops(inside, leave):
            with parallel.one_blas_thread():
                inside.set()
                leave.wait(5)

        t = threading.Thread(target=ops, args=(inside, leave))
        t.start()
        assert inside.wait(5)
        assert runtime.set_blas_threads(asked)
        assert lib.n == 1  # still held
        assert runtime.blas_threads() == after
        leave.set()
        t.join(5)
        assert lib.n == after and runtime.blas_threads() == after
    assert runtime.set_blas_threads(4) and lib.n == 4  # no hold: at once


def test_matmul_holds_small_products_on_one_blas_thread_while_work_is_split(monkeypatch):
    lib = FakeBlas(2)
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: [lib])
    monkeypatch.setattr(parallel, "_last_split", [-float("inf")])  # no split in this process yet
    rng = np.random.default_rng(0)
    small = (rng.standard_normal((64, 80)), rng.standard_normal((80, 64)))  # 327,680
    np.testing.assert_array_equal(parallel.matmul(*small), small[0] @ small[1])
    assert lib.calls == []  # nothing split yet (an MLP's process): the BLAS keeps its threads
    parallel.parallel_parts(lambda i, a, b: None, [(0, 1)])  # one part is not a split
    lib.calls.clear()
    np.testing.assert_array_equal(parallel.matmul(*small), small[0] @ small[1])
    assert lib.calls == []
    parallel.parallel_parts(lambda i, a, b: None, [(0, 1), (1, 2)])
    lib.calls.clear()
    k = parallel.SMALL_PRODUCT // (64 * 32)  # 64 × k × 32 = SMALL_PRODUCT: not small
    big = (rng.standard_normal((64, k)), rng.standard_normal((k, 32)))
    np.testing.assert_array_equal(parallel.matmul(*small), small[0] @ small[1])
    assert lib.calls == [1, 2] and lib.n == 2
    lib.calls.clear()
    np.testing.assert_array_equal(parallel.matmul(*big), big[0] @ big[1])
    assert lib.calls == []
    ones, rows = np.ones(200), rng.standard_normal((200, 80))  # 16,000: OpenBLAS would thread
    np.testing.assert_array_equal(parallel.matmul(ones, rows), ones @ rows)
    assert lib.calls == [1, 2]
    lib.calls.clear()  # tiny: OpenBLAS keeps to one thread by itself, no hold
    tiny = (rng.standard_normal((8, 5)), rng.standard_normal((5, 3)))
    np.testing.assert_array_equal(parallel.matmul(*tiny), tiny[0] @ tiny[1])
    np.testing.assert_array_equal(parallel.matmul(np.ones(8), tiny[0]), np.ones(8) @ tiny[0])
    assert lib.calls == []
    # the splitting stopped (a notebook's CNN, then an MLP): the holds stop with it
    parallel._last_split[0] -= parallel.RECENT_SPLIT + 0.5
    np.testing.assert_array_equal(parallel.matmul(*small), small[0] @ small[1])
    assert lib.calls == []
    parallel.parallel_parts(lambda i, a, b: None, [(0, 1), (1, 2)])  # splitting again
    lib.calls.clear()
    parallel.matmul(*small)
    assert lib.calls == [1, 2]


def test_nothing_is_left_changed_in_the_real_blas():
    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2):
        before = [lib.get_num_threads() for lib in blas.lib_controllers]
        parallel.parallel_parts(lambda i, a, b: np.ones((4, 4)) @ np.ones((4, 4)),
                                [(0, 1), (1, 2)])
        parallel.matmul(np.ones((4, 4)), np.ones((4, 4)))
        assert [lib.get_num_threads() for lib in blas.lib_controllers] == before
        with parallel.one_blas_thread():  # the direct C calls reach the real library
            assert [lib.get_num_threads() for lib in blas.lib_controllers] == [1] * len(before)
        assert [lib.get_num_threads() for lib in blas.lib_controllers] == before


def test_threads_setting_is_checked(monkeypatch):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="set_threads"):
            parallel.set_threads(bad)
    monkeypatch.setenv(parallel.THREADS_ENV_VAR, "two")
    with pytest.raises(ValueError, match="TINYGRAD_EDU_THREADS must be a whole number"):
        parallel._env_threads()
    monkeypatch.setenv(parallel.THREADS_ENV_VAR, "3")
    assert parallel._env_threads() == 3


def test_import_starts_no_thread():
    code = ("import threading, tinygrad_edu, tinygrad_edu.nn; "
            "print(threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "1"


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")  # 3.12+: the point
def test_a_forked_child_splits_with_its_own_threads(monkeypatch):
    """After os.fork the parent's worker threads do not exist in the child: the child must
    start its own instead of queueing work nobody runs (a hang)."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    monkeypatch.setattr(parallel, "_chosen", [2])
    assert parallel.parallel_parts(lambda i, a, b: b - a, [(0, 1), (1, 3)]) == [1, 2]
    result = _in_forked_child(  # the child splits once more
        lambda: repr(parallel.parallel_parts(lambda i, a, b: b - a, [(0, 2), (2, 5)])),
        hang="the forked child never finished its split (no worker threads)")
    assert result == "[2, 3]"


def _in_forked_child(body, hang: str = "the forked child hung") -> str:
    """Run ``body()`` in a forked child; return what it returned (a str), failing with
    ``hang`` (not hanging) when the child does not finish within 30 s, and unless it exits
    with status 0."""
    import os
    import time

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report, leave without cleanup
        try:
            os.write(write, body().encode())
        finally:
            os._exit(0)
    os.close(write)
    deadline = time.monotonic() + 30
    done, status = 0, None
    while not done and time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)
    if not done:  # e.g. waiting on a queue no thread serves: fail, do not hang
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail(hang)
    assert status == 0
    return os.read(read, 1000).decode()


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")  # 3.12+: the point
def test_a_child_forked_during_another_threads_hold_gets_its_blas_back(monkeypatch):
    """Thread B holds the BLAS at one thread (and, at the moment of the fork, the hold's
    lock) while the main thread forks: in the child B does not exist, so its hold never
    closes.  The child must get the BLAS's own count back and take holds of its own
    without waiting for a lock nobody will release; the parent is unaffected."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    lib = FakeBlas(2)
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: [lib])
    inside, lock_taken, release = threading.Event(), threading.Event(), threading.Event()

    def thread_b():
        with parallel.one_blas_thread():
            inside.set()
            with parallel._hold_lock:  # as if B were entering or leaving a hold right now
                lock_taken.set()
                release.wait(10)

    b = threading.Thread(target=thread_b)
    b.start()
    assert inside.wait(5) and lock_taken.wait(5)
    assert lib.n == 1

    def child() -> str:
        seen = [lib.n, parallel._hold[0]]
        with parallel.one_blas_thread():  # would hang on B's lock without the handler
            seen.append(lib.n)
        seen.append(lib.n)
        return repr(seen)

    try:
        result = _in_forked_child(child)
    finally:
        release.set()
        b.join(10)
    assert result == "[2, 0, 1, 2]"  # count given back; a hold of its own works
    assert lib.n == 2 and parallel._hold[0] == 0  # the parent
    assert getattr(parallel._mine, "holds", 0) == 0


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_the_real_blas_in_a_child_forked_during_a_hold():
    """The same with numpy's own BLAS (its C functions called in the child, after the
    library's own fork handling): the child has the count back, its own holds set one
    thread (a stale count of open holds would skip that), and it multiplies."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    if runtime_blas_threads() is None:
        pytest.skip("no BLAS library that threadpoolctl knows is loaded")
    blas = ThreadpoolController().select(user_api="blas")
    with blas.limit(limits=2):
        n = parallel._thread_counters()[0][0]()  # 2, or 1 where the library has one core
        inside, leave = threading.Event(), threading.Event()

        def ops():
            with parallel.one_blas_thread():
                inside.set()
                leave.wait(10)

        t = threading.Thread(target=ops)
        t.start()
        assert inside.wait(5)

        def child() -> str:
            real = parallel._thread_counters()[0][0]  # the library's own count, read in C
            a = np.ones((256, 256), np.float32)
            with parallel.one_blas_thread():  # the child's own holds hold
                held = real()
            return repr([real(), held, runtime_blas_threads(), float((a @ a).sum())])

        try:
            result = _in_forked_child(child)
        finally:
            leave.set()
            t.join(10)
        assert result == repr([n, 1, n, 256.0 ** 3])
        assert runtime_blas_threads() == n


def runtime_blas_threads():
    from tinygrad_edu import runtime

    return runtime.blas_threads()


@pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning")
def test_a_child_forked_inside_its_own_hold_keeps_it_until_the_block_ends(monkeypatch):
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no os.fork on this platform")
    lib = FakeBlas(2)
    monkeypatch.setattr(parallel, "_blas_libraries", lambda: [lib])

    def child() -> str:
        return repr([lib.n, parallel._hold[0]])

    with parallel.one_blas_thread():
        result = _in_forked_child(child)
    assert result == "[1, 1]"  # the forking thread's own hold is still open in the child
    assert lib.n == 2 and parallel._hold[0] == 0


def test_training_steps_give_the_same_bits_on_any_number_of_cores(monkeypatch):
    """The train command's CNN (batch norm, hidden layer, dropout), three SGD steps at the
    real chunk sizes: one part and three parts end with the same weights, bit for bit."""
    from tinygrad_edu import cross_entropy
    from tinygrad_edu.models import build_model
    from tinygrad_edu.optim import SGD
    from tinygrad_edu.train import MODEL_OPTIONS

    rng = np.random.default_rng(0)
    x = rng.random((3, 24, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, (3, 24))

    def train(threads):
        monkeypatch.setattr(parallel, "_chosen", [threads])
        model = build_model("cnn", rng=0, **MODEL_OPTIONS["cnn"])
        opt = SGD(model.parameters(), 0.05, 0.9)
        for xb, yb in zip(x, y):
            loss = cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return [p.data.copy() for p in model.parameters()]

    monkeypatch.setattr(parallel, "MIN_PART_BYTES", 1 << 16)  # 24 images: split
    one, three = train(1), train(3)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
