// The shared cases (tests/cases/*.json, format in tests/cases/README.md) replayed through the C++
// wrapper: one test per case. The files come from AFC_CASES_DIR (set by CMakeLists.txt).
#include "alphaforge_cache.hpp"
#include "harness.hpp"
#include "json.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#ifndef AFC_CASES_DIR
#error "AFC_CASES_DIR must name the folder of the case files"
#endif

namespace {

using Json = const json_value *;
using Event = std::tuple<std::string, std::string, std::string>;

std::string str(Json v) { return std::string(v->str, v->len); }

const json_value &at(Json v, const char *name) {
    Json field = json_get(v, name);
    if (field == nullptr) throw std::runtime_error(std::string("malformed case: no ") + name);
    return *field;
}

std::uint64_t integer(const json_value &v) {
    if (v.type != JSON_NUMBER || !v.is_integer) throw std::runtime_error("malformed case: integer");
    return v.integer;
}

std::optional<std::string> opt_str(const json_value &v) {
    if (v.type == JSON_NULL) return std::nullopt;
    return str(&v);
}

afc_status error_status(const std::string &name) {
    if (name == "invalid_config") return AFC_INVALID_CONFIG;
    if (name == "io_error") return AFC_IO_ERROR;
    if (name == "snapshot_invalid") return AFC_SNAPSHOT_INVALID;
    if (name == "invalid_argument") return AFC_INVALID_ARGUMENT;
    if (name == "entry_too_heavy") return AFC_ENTRY_TOO_HEAVY;
    throw std::runtime_error("malformed case: unknown error " + name);
}

std::uint64_t stat_field(const afc::Stats &s, const std::string &name) {
    if (name == "hits") return s.hits;
    if (name == "misses") return s.misses;
    if (name == "inserts") return s.inserts;
    if (name == "updates") return s.updates;
    if (name == "evictions") return s.evictions;
    if (name == "expirations") return s.expirations;
    if (name == "removals") return s.removals;
    if (name == "entries") return s.entries;
    if (name == "weight") return s.weight;
    throw std::runtime_error("malformed case: unknown statistic " + name);
}

struct Replay {
    std::string where;
    std::vector<Event> events; // before the cache, which tells the listener when destroyed
    afc::Cache cache;

    std::filesystem::path dir; // the case's temporary directory (snapshot files)

    std::string file(const json_value &op) const { return (dir / str(&at(&op, "file"))).string(); }

    void check(bool ok, const std::string &what) const {
        harness::check(ok, __FILE__, __LINE__, where + ": " + what);
    }

    /// Performs `op`; true if it threw the afc::Error named by the op's "error" (or none).
    void run(const json_value &op) {
        Json error = json_get(&op, "error");
        try {
            perform(op);
            check(error == nullptr, "no error, expected " + (error ? str(error) : ""));
        } catch (const afc::Error &e) {
            check(error != nullptr && e.status() == error_status(str(error)),
                  std::string("unexpected error ") + e.what());
        }
    }

    void perform(const json_value &op) {
        const std::string name = str(&at(&op, "op"));
        Json expect = json_get(&op, "expect");
        Json ttl = json_get(&op, "ttl_ns");
        if (name == "put") {
            if (ttl)
                cache.put(str(&at(&op, "key")), str(&at(&op, "value")), afc::Duration(integer(*ttl)));
            else
                cache.put(str(&at(&op, "key")), str(&at(&op, "value")));
        } else if (name == "get" || name == "peek") {
            const std::string key = str(&at(&op, "key"));
            auto got = name == "get" ? cache.get(key) : cache.peek(key);
            check(got == opt_str(*expect), name + " " + key + " gave " + got.value_or("<miss>"));
        } else if (name == "contains") {
            check(cache.contains(str(&at(&op, "key"))) == expect->boolean, "contains");
        } else if (name == "remove") {
            check(cache.remove(str(&at(&op, "key"))) == expect->boolean, "remove");
        } else if (name == "len") {
            check(cache.size() == integer(*expect), "len " + std::to_string(cache.size()));
        } else if (name == "weight") {
            check(cache.weight() == integer(*expect), "weight " + std::to_string(cache.weight()));
        } else if (name == "keys") {
            std::vector<std::string> want;
            for (std::size_t i = 0; i < expect->len; i++) want.push_back(str(&expect->items[i]));
            check(cache.keys() == want, "keys");
        } else if (name == "ttl") {
            auto left = cache.remaining_ttl(str(&at(&op, "key")));
            if (expect->type == JSON_NULL)
                check(!left.has_value(), "ttl: expected no entry");
            else if (expect->type == JSON_STRING)
                check(left == std::optional<afc::Duration>(afc::Duration::max()), "ttl: expected never");
            else
                check(left == std::optional<afc::Duration>(afc::Duration(integer(*expect))),
                      "ttl: " + std::to_string(left ? left->count() : -1));
        } else if (name == "advance") {
            cache.advance(afc::Duration(integer(at(&op, "ns"))));
        } else if (name == "set_clock") {
            cache.set_time(afc::Duration(integer(at(&op, "ns"))));
        } else if (name == "stats") {
            const afc::Stats s = cache.stats();
            for (std::size_t i = 0; i < expect->len; i++) {
                const std::string field = expect->keys[i];
                if (field == "hit_ratio")
                    check(std::fabs(s.hit_ratio() - expect->items[i].number) < 1e-12, "hit_ratio");
                else
                    check(stat_field(s, field) == integer(expect->items[i]),
                          field + " = " + std::to_string(stat_field(s, field)));
            }
        } else if (name == "reset_stats") {
            cache.reset_stats();
        } else if (name == "get_many") {
            const json_value &keys = at(&op, "keys");
            std::vector<std::string> owned;
            for (std::size_t i = 0; i < keys.len; i++) owned.push_back(str(&keys.items[i]));
            std::vector<std::string_view> views(owned.begin(), owned.end());
            auto got = cache.get_many(views);
            bool same = got.size() == expect->len;
            for (std::size_t i = 0; same && i < got.size(); i++)
                same = got[i] == opt_str(expect->items[i]);
            check(same, "get_many");
        } else if (name == "put_many") {
            const json_value &items = at(&op, "items");
            std::vector<std::pair<std::string, std::string>> owned;
            for (std::size_t i = 0; i < items.len; i++)
                owned.emplace_back(str(&items.items[i].items[0]), str(&items.items[i].items[1]));
            std::vector<std::pair<std::string_view, std::string_view>> views(owned.begin(), owned.end());
            if (ttl)
                cache.put_many(views, afc::Duration(integer(*ttl)));
            else
                cache.put_many(views);
        } else if (name == "expire") {
            check(cache.expire() == integer(*expect), "expire");
        } else if (name == "clear") {
            cache.clear();
        } else if (name == "resize") {
            cache.resize(integer(at(&op, "max_entries")));
        } else if (name == "events") {
            std::vector<Event> want;
            for (std::size_t i = 0; i < expect->len; i++) {
                const json_value &e = expect->items[i];
                want.emplace_back(str(&e.items[0]), str(&e.items[1]), str(&e.items[2]));
            }
            std::vector<Event> got = std::move(events);
            events.clear();
            Json unordered = json_get(&op, "unordered");
            if (unordered && unordered->boolean) {
                std::sort(want.begin(), want.end());
                std::sort(got.begin(), got.end());
            }
            check(got == want, "events (" + std::to_string(got.size()) + " heard)");
        } else if (name == "close") {
            cache.close();
        } else if (name == "save") {
            cache.save(file(op));
        } else if (name == "load") {
            cache.load(file(op));
        } else if (name == "write_file") {
            const json_value &content = at(&op, "content");
            std::ofstream out(file(op), std::ios::binary | std::ios::trunc);
            out.write(content.str, static_cast<std::streamsize>(content.len));
            check(static_cast<bool>(out), "write_file");
        } else if (name == "truncate") {
            std::filesystem::resize_file(file(op), integer(at(&op, "bytes")));
        } else {
            throw std::runtime_error("malformed case: unknown operation " + name);
        }
    }
};

void run_case(const std::string &file, const json_value &c) {
    const std::string where = file + ": " + str(&at(&c, "name"));
    const json_value &config = at(&c, "cache");
    afc::Cache::Builder builder(integer(at(&config, "max_entries")));
    if (Json v = json_get(&config, "max_bytes")) builder.max_bytes(integer(*v));
    if (Json v = json_get(&config, "ttl_ns")) builder.default_ttl(afc::Duration(integer(*v)));
    if (Json v = json_get(&config, "shards")) builder.shards(static_cast<std::uint32_t>(integer(*v)));
    builder.manual_clock();
    Replay *replay = nullptr;
    builder.listener([&replay](std::string_view key, std::string_view value, afc::Cause cause) {
        replay->events.emplace_back(std::string(key), std::string(value), afc::to_string(cause));
    });
    if (Json create_error = json_get(&c, "create_error")) {
        try {
            (void)builder.build();
            harness::check(false, __FILE__, __LINE__, where + ": built, expected an error");
        } catch (const afc::Error &e) {
            harness::check(e.status() == error_status(str(create_error)), __FILE__, __LINE__,
                           where + ": " + e.what());
        }
        return;
    }
    Replay r{where, {}, builder.build(), {}};
    replay = &r;
    std::string tmpl = (std::filesystem::temp_directory_path() / "afc-cases-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    r.dir = tmpl;
    const json_value &ops = at(&c, "ops");
    for (std::size_t i = 0; i < ops.len; i++) {
        r.where = where + ": op " + std::to_string(i);
        r.run(ops.items[i]);
    }
    std::filesystem::remove_all(r.dir);
}

/// The case files, sorted by name.
std::vector<std::string> case_files() {
    std::vector<std::string> files;
    if (DIR *dir = opendir(AFC_CASES_DIR)) {
        while (dirent *entry = readdir(dir)) {
            const std::string name = entry->d_name;
            if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0)
                files.push_back(name);
        }
        closedir(dir);
    }
    std::sort(files.begin(), files.end());
    return files;
}

/// Registers one test per case when the program starts.
struct RegisterCases {
    std::vector<std::unique_ptr<std::string>> names;
    std::vector<std::unique_ptr<harness::Registration>> registrations;

    RegisterCases() {
        const auto files = case_files();
        names.push_back(std::make_unique<std::string>("cases: the case files are found"));
        registrations.push_back(std::make_unique<harness::Registration>(
            names.back()->c_str(), [n = files.size()] { CHECK(n >= 5); }));
        for (const std::string &file : files) {
            std::unique_ptr<json_value, void (*)(json_value *)> root(
                json_parse_file((std::string(AFC_CASES_DIR) + "/" + file).c_str()), json_free);
            Json cases = json_get(root.get(), "cases");
            for (std::size_t i = 0; cases && i < cases->len; i++) {
                names.push_back(std::make_unique<std::string>(
                    "cases: " + file + ": " + str(&at(&cases->items[i], "name"))));
                registrations.push_back(std::make_unique<harness::Registration>(
                    names.back()->c_str(), [file, i] {
                        std::unique_ptr<json_value, void (*)(json_value *)> doc(
                            json_parse_file((std::string(AFC_CASES_DIR) + "/" + file).c_str()),
                            json_free);
                        run_case(file, json_get(doc.get(), "cases")->items[i]);
                    }));
            }
        }
    }
};

const RegisterCases register_cases;

} // namespace
