// The runner of the C++ wrapper's tests (see harness.hpp).
#include "harness.hpp"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

namespace harness {
namespace {

std::vector<std::pair<const char *, std::function<void()>>> &tests() {
    static std::vector<std::pair<const char *, std::function<void()>>> all;
    return all;
}

std::atomic<long> failures{0};
std::mutex print_lock;

} // namespace

Registration::Registration(const char *name, std::function<void()> run) {
    tests().emplace_back(name, std::move(run));
}

void check(bool ok, const char *file, int line, const std::string &what) {
    if (ok) return;
    failures++;
    std::lock_guard<std::mutex> guard(print_lock);
    std::fprintf(stderr, "  %s:%d: failed: %s\n", file, line, what.c_str());
}

} // namespace harness

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "";
    int passed = 0, failed = 0;
    for (auto &test : harness::tests()) {
        if (std::strstr(test.first, filter) == nullptr) continue;
        const long before = harness::failures.load();
        try {
            test.second();
        } catch (const std::exception &e) {
            harness::check(false, __FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
        }
        if (harness::failures.load() == before) {
            passed++;
        } else {
            failed++;
            std::fprintf(stderr, "FAIL %s\n", test.first);
        }
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
