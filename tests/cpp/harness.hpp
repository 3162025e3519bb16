// The small test harness of the C++ wrapper's tests: TEST(name) { ... } registers a test, CHECK*
// record assertions (from any thread), main() (harness.cpp) runs the tests whose name contains
// argv[1] (all by default) and ends with the line "N passed, N failed".
#ifndef AFC_CPP_HARNESS_HPP
#define AFC_CPP_HARNESS_HPP

#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace harness {

/// Every test registered, in order: (name, body).
std::vector<std::pair<const char *, std::function<void()>>> &tests();

/// Registers a test (used by TEST).
struct Registration {
    Registration(const char *name, std::function<void()> run);
};

/// Records one assertion; prints `what` when it failed. Thread-safe.
void check(bool ok, const char *file, int line, const std::string &what);

template <class A, class B>
void check_eq(const A &got, const B &want, const char *file, int line, const char *expr) {
    if (got == want) {
        check(true, file, line, expr);
        return;
    }
    std::ostringstream s;
    s << expr << ": got " << got << ", expected " << want;
    check(false, file, line, s.str());
}

} // namespace harness

#define AFC_CAT2(a, b) a##b
#define AFC_CAT(a, b) AFC_CAT2(a, b)
#define TEST(name)                                                                       \
    static void AFC_CAT(test_, __LINE__)();                                              \
    static const harness::Registration AFC_CAT(registration_, __LINE__)(name,            \
                                                                        AFC_CAT(test_, __LINE__)); \
    static void AFC_CAT(test_, __LINE__)()
#define CHECK(cond) harness::check(static_cast<bool>(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(got, want) harness::check_eq((got), (want), __FILE__, __LINE__, #got " == " #want)
/// Checks that `expr` throws afc::Error with status `want`.
#define CHECK_THROWS_STATUS(expr, want)                                                   \
    do {                                                                                  \
        bool thrown_ = false;                                                             \
        try {                                                                             \
            (void)(expr);                                                                 \
        } catch (const afc::Error &e_) {                                                  \
            thrown_ = true;                                                               \
            harness::check_eq(afc_status_name(e_.status()), std::string(afc_status_name(want)), \
                              __FILE__, __LINE__, #expr " throws " #want);                \
        }                                                                                 \
        if (!thrown_) harness::check(false, __FILE__, __LINE__, #expr " did not throw");  \
    } while (0)

#endif // AFC_CPP_HARNESS_HPP
