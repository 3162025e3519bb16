#include <alphaforge_cache.hpp>

#include <iostream>

using namespace std::chrono_literals;

int main() {
    afc::Cache cache = afc::Cache::builder(100000)  // at most 100k entries
                           .max_bytes(256 << 20)    // and 256 MiB of keys + values
                           .default_ttl(60s)        // entries expire 60 s after their put
                           .manual_clock()          // simulated time (default: monotonic)
                           .listener([](std::string_view key, std::string_view, afc::Cause cause) {
                               std::cout << key << " left: " << afc::to_string(cause) << "\n";
                           })
                           .build();

    cache.put("bar:AAPL:1m:0930", "189.70,190.10,189.55,189.98");
    cache.put("quote:AAPL", "189.97/189.99", 500ms);
    std::optional<std::string> bar = cache.get("bar:AAPL:1m:0930");  // nullopt on a miss
    std::string buf;                                  // reused: no allocation once large enough
    if (cache.get("quote:AAPL", buf)) std::cout << "quote " << buf << "\n";
    auto many = cache.get_many({"quote:AAPL", "quote:MSFT"});  // one call for many keys
    cache.advance(1s);                                // quote:AAPL has now expired
    cache.remove("bar:AAPL:1m:0930");
    try {
        cache.resize(0);                              // errors are afc::Error exceptions
    } catch (const afc::Error &e) {
        std::cout << e.what() << "\n";
    }
    afc::Stats s = cache.stats();
    std::cout << s.hits << " hits, " << s.misses << " misses, ratio " << s.hit_ratio() << "\n";
    return bar && many[0] && !many[1] && !cache.contains("quote:AAPL") ? 0 : 1;
}
