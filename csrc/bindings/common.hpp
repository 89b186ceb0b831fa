// First include of every binding TU: pybind11, the NumPy helpers, and the
// Python-side wrappers of core objects.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <thread>

#include "yolo_io/mapped_file.hpp"
#include "yolo_io/model.hpp"
#include "yolo_io/weights.hpp"

namespace py = pybind11;

namespace yolo_io::bindings {

// Threads coming back from the core once the interpreter exits. CPython ends
// a daemon thread that takes the GIL back while the interpreter is finalizing
// with pthread_exit, whose forced unwind ran up through pybind11's noexcept
// gil_scoped_release into std::terminate, or through a py::object's
// destructor without the GIL: an abort at exit while a daemon thread was in a
// call (tests/test_pool.py). So on_interpreter_exit(), an atexit callback
// (module.cpp) that Python runs on the exiting thread before finalization,
// raises g_interpreter_exiting. From then on a thread coming back from a call
// it began before that sleeps until the process ends, as CPython 3.14 does
// with such threads itself; g_returning counts the threads between that check
// and having the GIL back, and the callback lets them finish, so none is left
// asking for the GIL. A call begun after the flag (a thread that an atexit
// callback starts and joins, say) returns as usual unless the interpreter is
// already finalizing by then.
inline std::atomic<bool> g_interpreter_exiting{false};
inline std::atomic<int> g_returning{0};
inline std::thread::id g_exiting_thread;

inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// Releases the GIL around a core call, as py::gil_scoped_release does, except
// at exit (above).
class GilRelease {
public:
    GilRelease() : began_at_exit_(g_interpreter_exiting.load()), state_(PyEval_SaveThread()) {}
    // noexcept(false): should a thread still be ended by CPython, its forced
    // unwind passes.
    ~GilRelease() noexcept(false) {
        g_returning.fetch_add(1);
        if (g_interpreter_exiting.load() && std::this_thread::get_id() != g_exiting_thread &&
            (!began_at_exit_ || interpreter_finalizing())) {
            g_returning.fetch_sub(1);
            for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
        }
        PyEval_RestoreThread(state_);
        g_returning.fetch_sub(1);
    }
    GilRelease(const GilRelease&) = delete;
    GilRelease& operator=(const GilRelease&) = delete;

private:
    bool began_at_exit_;
    PyThreadState* state_;
};

// The atexit callback (GIL held). Both sides use sequentially consistent
// operations: either a returning thread sees the flag, or this sees its count
// and gives it the GIL until it is back. Bounded, so that a count left wrong
// can never hang the exit.
inline void on_interpreter_exit() {
    g_exiting_thread = std::this_thread::get_id();
    g_interpreter_exiting.store(true);
    for (int i = 0; i < 1000 && g_returning.load() != 0; ++i) {
        Py_BEGIN_ALLOW_THREADS
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        Py_END_ALLOW_THREADS
    }
}

// A fork's child has none of its parent's other threads, so none returning.
inline void after_fork_in_child() {
    g_returning.store(0);
}

// Python holder of a parsed config (pybind11 holders cannot be shared_ptr<const T>).
struct PyConfig {
    std::shared_ptr<const Config> ptr;
};

// Keeps a mapping alive: the base object of every view into it.
struct PyMapping {
    std::shared_ptr<const MappedFile> file;
};

// A weights file bound to a config, plus the read-only uint8 array of the
// whole file that every parameter view uses as its base.
struct PyWeights {
    std::shared_ptr<const Weights> weights;
    py::array raw;
};

// A core string as a Python str. A cfg need not be UTF-8 (darknet reads bytes),
// so cfg text, and messages and paths quoting it, decode as UTF-8 with
// errors="backslashreplace": a byte that is not UTF-8 shows as \xNN.
inline py::str to_py_str(std::string_view s) {
    PyObject* str =
        PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "backslashreplace");
    if (str == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(str);
}

// A file name from the core as a Python str, decoded as os.fsdecode() does
// (surrogateescape): a name in any encoding comes back as the same name, and
// goes back to the core unchanged. File names come in as std::filesystem::path
// (str, bytes or os.PathLike, encoded as os.fsencode() does).
inline py::str to_py_path(std::string_view s) {
    PyObject* str = PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    if (str == nullptr) {
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::str>(str);
}

// The Python object of a bound weights file: its whole mapping as a
// read-only uint8 array beside it.
PyWeights wrap_weights(std::shared_ptr<const Weights> weights);

void register_errors(py::module_& m);
void register_config(py::module_& m);
void register_weights(py::module_& m);
void register_writer(py::module_& m);
void register_safetensors(py::module_& m);
void register_detect(py::module_& m);

}  // namespace yolo_io::bindings
