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

std::vector<std::pair<const char *, std::function<void()>>> &tests() {
    static std::vector<std::pair<const char *, std::function<void()>>> all;
    return all;
}

namespace {

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

/// --check-groups GROUP...: fails (listing them) if some tests' names start with no "GROUP: ".
static int check_groups(int argc, char **argv) {
    int orphans = 0;
    for (auto &test : harness::tests()) {
        bool grouped = false;
        for (int i = 2; i < argc && !grouped; i++) {
            const std::string prefix = std::string(argv[i]) + ": ";
            grouped = std::strncmp(test.first, prefix.c_str(), prefix.size()) == 0;
        }
        if (!grouped) {
            std::fprintf(stderr, "test in no group: %s\n", test.first);
            orphans++;
        }
    }
    std::printf("%zu tests, %d in no group\n", harness::tests().size(), orphans);
    return orphans == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "--check-groups") == 0) return check_groups(argc, argv);
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
