// Translates core exceptions to the Python classes of yolo_io._base.errors, with
// their attributes; std::system_error becomes OSError (FileNotFoundError, ...).
#include <string>
#include <string_view>
#include <system_error>

#include "common.hpp"
#include "yolo_io/errors.hpp"

namespace yolo_io::bindings {

namespace {

void raise(const char* name, std::string_view message, const py::dict& attrs) {
    py::object cls = py::module_::import("yolo_io._base.errors").attr(name);
    py::object exc = cls(to_py_str(message), **attrs);
    PyErr_SetObject(cls.ptr(), exc.ptr());
}

}  // namespace

void register_errors(py::module_& m) {
    (void)m;
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) {
                std::rethrow_exception(p);
            }
        } catch (const CfgError& e) {
            raise("CfgError", e.what(),
                  py::dict(py::arg("path") = to_py_path(e.path()), py::arg("line") = e.line()));
        } catch (const WeightsSizeError& e) {
            py::dict attrs(py::arg("expected") = e.expected(), py::arg("actual") = e.actual());
            attrs["layer"] = e.layer() >= 0 ? py::object(py::int_(e.layer())) : py::none();
            attrs["partial_layers"] = e.partial_layers() >= 0
                                          ? py::object(py::int_(e.partial_layers()))
                                          : py::none();
            raise("WeightsSizeError", e.what(), attrs);
        } catch (const FormatError& e) {
            raise("FormatError", e.what(), py::dict());
        } catch (const Error& e) {
            raise("YoloIOError", e.what(), py::dict());
        } catch (const std::system_error& e) {
            // what() is "<path>: <strerror>"; recover the path for OSError.
            std::string what = e.what();
            std::string reason = e.code().message();
            std::string path = what;
            std::string suffix = ": " + reason;
            if (path.size() > suffix.size() &&
                path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
                path.resize(path.size() - suffix.size());
            }
            py::object exc = py::reinterpret_steal<py::object>(PyObject_CallFunction(
                PyExc_OSError, "isO", e.code().value(), reason.c_str(),
                to_py_path(path).ptr()));
            if (!exc) {
                return;  // the call itself raised; leave that error set
            }
            PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
        }
    });
}

}  // namespace yolo_io::bindings
