// gilmour-wordcount [--redis URL] [FILE]
//
// The word-count composition of the Gilmour talk, on a local file instead of
// a URL:
//
//   example.fetch | example.words | example.stopfilter | example.count |
//     (example.popular3 & example.popular4 & example.popular5)
//
// Each service is its own reply handler (started here, on a services engine);
// a client engine runs the composition and prints, for word lengths 3, 4 and
// 5, the most frequent words with their counts, most frequent first. FILE
// defaults to the bundled sample text. Exits 1 when any step fails. Without
// --redis everything runs on the in-process backend.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common/cli.hpp"

#ifndef GILMOUR_WORDCOUNT_SAMPLE
#define GILMOUR_WORDCOUNT_SAMPLE "sample.txt"
#endif

namespace {

using json = nlohmann::json;
using gilmour::Request;
using gilmour::Response;

/// How many words each popularN service returns.
constexpr std::size_t kTop = 3;

const std::set<std::string>& stop_words() {
  static const std::set<std::string> words = {
      "a",    "about", "above", "after", "again",  "all",   "an",    "and",   "any",     "are",
      "as",   "at",    "be",    "been",  "before", "but",   "by",    "came",  "come",    "did",
      "do",   "for",   "from",  "had",   "has",    "have",  "he",    "her",   "him",     "his",
      "i",    "if",    "in",    "into",  "is",     "it",    "its",   "not",   "nothing", "of",
      "on",   "once",  "only",  "or",    "our",    "out",   "over",  "said",  "she",     "so",
      "that", "the",   "their", "them",  "then",   "there", "they",  "this",  "to",      "up",
      "was",  "we",    "went",  "were",  "what",   "when",  "where", "which", "while",   "who",
      "will", "with",  "would", "you"};
  return words;
}

std::vector<gilmour::Subscription> serve_wordcount(gilmour::Gilmour& g) {
  std::vector<gilmour::Subscription> subs;
  // A file path -> the file's text; 404 when it cannot be read.
  subs.push_back(g.reply_to("example.fetch", [](const Request& req, Response& res) {
    auto path = req.data<std::string>();
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      res.set_data("cannot read " + path).set_code(gilmour::code::kNotFound);
      return;
    }
    std::ostringstream text;
    text << in.rdbuf();
    res.set_data(text.str());
  }));
  // Text -> lower-case words (ASCII letters, apostrophes inside words, and
  // any non-ASCII byte count as word characters).
  subs.push_back(g.reply_to("example.words", [](const Request& req, Response& res) {
    auto text = req.data<std::string>();
    json words = json::array();
    std::string word;
    auto flush = [&] {
      while (!word.empty() && word.back() == '\'') word.pop_back();
      if (!word.empty()) words.push_back(word);
      word.clear();
    };
    for (unsigned char ch : text) {
      if (std::isalpha(ch) || ch >= 0x80 || (ch == '\'' && !word.empty())) {
        word += static_cast<char>(ch < 0x80 ? std::tolower(ch) : ch);
      } else {
        flush();
      }
    }
    flush();
    res.set_data(std::move(words));
  }));
  // Words -> words that are not stop words.
  subs.push_back(g.reply_to("example.stopfilter", [](const Request& req, Response& res) {
    json kept = json::array();
    for (const auto& w : req.data()) {
      if (!stop_words().count(w.get<std::string>())) kept.push_back(w);
    }
    res.set_data(std::move(kept));
  }));
  // Words -> {"word": count}.
  subs.push_back(g.reply_to("example.count", [](const Request& req, Response& res) {
    std::map<std::string, int> counts;
    for (const auto& w : req.data()) ++counts[w.get<std::string>()];
    res.set_data(counts);
  }));
  // Counts -> the kTop most frequent words of one length:
  // {"length": n, "words": [{"word": w, "count": c}, ...]}, most frequent first.
  for (std::size_t length : {3, 4, 5}) {
    subs.push_back(g.reply_to(
        "example.popular" + std::to_string(length), [length](const Request& req, Response& res) {
          std::vector<std::pair<std::string, int>> words;
          for (const auto& [w, n] : req.data().items()) {
            if (w.size() == length) words.emplace_back(w, n.get<int>());
          }
          std::sort(words.begin(), words.end(), [](const auto& a, const auto& b) {
            return a.second != b.second ? a.second > b.second : a.first < b.first;
          });
          if (words.size() > kTop) words.resize(kTop);
          json top = json::array();
          for (auto& [w, n] : words) top.push_back({{"word", w}, {"count", n}});
          res.set_data({{"length", length}, {"words", std::move(top)}});
        }));
  }
  return subs;
}

}  // namespace

int main(int argc, char** argv) {
  auto cli = examples::parse_cli(argc, argv);
  if (examples::has_flag(cli, "--help") || cli.args.size() > 1) {
    std::cerr << "usage: gilmour-wordcount [--redis URL] [FILE]\n";
    return examples::has_flag(cli, "--help") ? 0 : 2;
  }
  try {
    // Services may run in another process (with --redis): send an absolute path.
    std::string file =
        std::filesystem::absolute(cli.args.empty() ? GILMOUR_WORDCOUNT_SAMPLE : cli.args[0])
            .string();

    gilmour::Gilmour services(examples::make_backend(cli));
    auto subs = serve_wordcount(services);
    services.start();
    gilmour::Gilmour client(examples::make_backend(cli));
    client.start();

    namespace c = gilmour::compose;
    gilmour::RequestOptions opts;
    opts.timeout = std::chrono::seconds(5);
    opts.confirm_subscribers = true;  // fail fast when a service is missing
    auto step = [&](const char* topic) { return c::request(client, topic, opts); };
    auto popular =
        c::parallel({step("example.popular3"), step("example.popular4"), step("example.popular5")});
    auto wordcount = step("example.fetch") | step("example.words") | step("example.stopfilter") |
                     step("example.count") | popular;
    std::cout << "composition: " << wordcount.describe() << "\n";

    gilmour::ExecuteOptions run;
    run.timeout = std::chrono::seconds(10);
    gilmour::Message result = wordcount.execute(file, run).get();

    int status = 0;
    if (result.code() != gilmour::code::kOk) {
      std::cerr << "gilmour-wordcount: error " << result.code() << ": " << result.error_text()
                << "\n";
      status = 1;
    } else {
      std::cout << "most frequent words in " << file << ":\n";
      for (const auto& group : result.data()) {
        std::cout << "  " << group.at("length").get<int>() << " letters:";
        const auto& words = group.at("words");
        if (words.empty()) std::cout << " (none)";
        for (std::size_t i = 0; i < words.size(); ++i) {
          std::cout << (i ? ", " : " ") << words[i].at("word").get<std::string>() << " "
                    << words[i].at("count").get<int>();
        }
        std::cout << "\n";
      }
    }
    client.stop();
    services.stop();
    return status;
  } catch (const std::exception& e) {
    std::cerr << "gilmour-wordcount: " << e.what() << "\n";
    return 1;
  }
}
