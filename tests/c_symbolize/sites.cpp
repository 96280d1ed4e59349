// A namespaced C++ method, to be named demangled with its parameters, as
// glog's google::LogFileObject::Write(bool, long, char const*, unsigned long).

namespace outer {
namespace inner {

struct Writer {
    long write(bool flush, long when, const char *text, unsigned long length);
};

long Writer::write(bool flush, long when, const char *text, unsigned long length)
{
    return flush ? when + static_cast<long>(length) : text[0];
}

} // namespace inner
} // namespace outer
