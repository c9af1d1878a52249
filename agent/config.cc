// The agent's TOML configuration: parse with toml++, validate into config.h's structs, print
// the effective configuration back as TOML.
//
// Every table is read through a TableReader that marks the keys it consumed; whatever is left
// is an unknown key. All problems are collected, so one --check-config run lists them all.
#include "agent/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace edgeinfer::agent {
namespace {

constexpr size_t kMaxValuePointers = 64;  // input.values: one per channel

namespace fs = std::filesystem;

// Collected problems, each "key.path: what is wrong".
struct Errors {
  std::vector<std::string> list;
  void Add(const std::string& path, const std::string& what) { list.push_back(path + ": " + what); }
  bool empty() const { return list.empty(); }
  Status ToStatus() const {
    std::string m;
    for (const auto& e : list) m += (m.empty() ? "" : "; ") + e;
    return Status::InvalidArgument(m);
  }
};

const char* TypeName(toml::node_type t) {
  switch (t) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// Reads one TOML table; keys not consumed by the time Finish() runs are unknown keys.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string path, Errors* errors)
      : table_(table), path_(std::move(path)), errors_(errors) {}

  std::string KeyPath(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  bool Has(std::string_view key) const { return table_ && table_->contains(key); }

  void Str(std::string_view key, std::string* out) {
    if (const toml::node* n = Take(key, toml::node_type::string)) *out = *n->value<std::string>();
  }
  void Bool(std::string_view key, bool* out) {
    if (const toml::node* n = Take(key, toml::node_type::boolean)) *out = *n->value<bool>();
  }
  void Int(std::string_view key, int64_t lo, int64_t hi, int* out) {
    const toml::node* n = Take(key, toml::node_type::integer);
    if (!n) return;
    int64_t v = *n->value<int64_t>();
    if (v < lo || v > hi) return Range(key, std::to_string(v), lo, hi);
    *out = static_cast<int>(v);
  }
  void Int64(std::string_view key, int64_t lo, int64_t hi, int64_t* out) {
    const toml::node* n = Take(key, toml::node_type::integer);
    if (!n) return;
    int64_t v = *n->value<int64_t>();
    if (v < lo || v > hi) return Range(key, std::to_string(v), lo, hi);
    *out = v;
  }
  // Integers are accepted too ("threshold = 0").
  void Double(std::string_view key, double lo, double hi, double* out) {
    if (!Has(key)) return;
    const toml::node* n = table_->get(key);
    used_.insert(std::string(key));
    if (!n->is_number()) return WrongType(key, *n, "a number");
    double v = *n->value<double>();
    if (!(v >= lo && v <= hi)) {  // also refuses NaN
      errors_->Add(KeyPath(key),
                   FormatDouble(v) + " is outside " + FormatDouble(lo) + ".." + FormatDouble(hi));
      return;
    }
    *out = v;
  }
  // A string (a list of one) or a list of strings.
  void StrOrStrList(std::string_view key, std::vector<std::string>* out) {
    if (!Has(key) || !table_->get(key)->is_string()) return StrList(key, out);
    if (const toml::node* n = Take(key, toml::node_type::string)) *out = {*n->value<std::string>()};
  }
  void StrList(std::string_view key, std::vector<std::string>* out) {
    const toml::node* n = Take(key, toml::node_type::array);
    if (!n) return;
    out->clear();
    const toml::array& a = *n->as_array();
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_string()) {
        WrongType(std::string(key) + "[" + std::to_string(i) + "]", a[i], "a string");
        continue;
      }
      out->push_back(*a[i].value<std::string>());
    }
  }
  // A sub-table, or null when absent or of the wrong type (reported).
  const toml::table* Table(std::string_view key) {
    const toml::node* n = Take(key, toml::node_type::table);
    return n ? n->as_table() : nullptr;
  }
  // An array of tables ([[key]]), or null.
  const toml::array* Tables(std::string_view key) {
    const toml::node* n = Take(key, toml::node_type::array);
    if (n && !n->as_array()->is_array_of_tables()) {
      errors_->Add(KeyPath(key), "expected [[" + std::string(key) + "]] tables");
      return nullptr;
    }
    return n ? n->as_array() : nullptr;
  }
  void Finish() {
    if (!table_) return;
    for (const auto& [k, v] : *table_) {
      if (!used_.count(std::string(k.str()))) errors_->Add(KeyPath(k.str()), "unknown key");
    }
  }
  Errors* errors() { return errors_; }

 private:
  const toml::node* Take(std::string_view key, toml::node_type want) {
    if (!Has(key)) return nullptr;
    used_.insert(std::string(key));
    const toml::node* n = table_->get(key);
    if (n->type() != want) {
      WrongType(key, *n, TypeName(want));
      return nullptr;
    }
    return n;
  }
  void WrongType(std::string_view key, const toml::node& n, const char* want) {
    errors_->Add(KeyPath(key), std::string("expected ") + want + ", got " + TypeName(n.type()));
  }
  void Range(std::string_view key, const std::string& v, int64_t lo, int64_t hi) {
    errors_->Add(KeyPath(key), v + " is outside " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  static std::string FormatDouble(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  }

  const toml::table* table_;
  std::string path_;
  Errors* errors_;
  std::set<std::string> used_;
};

std::string Trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(0, s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

// /etc/machine-id (systemd's stable host id), else the hostname.
std::string DefaultDeviceId() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  if (in && std::getline(in, id) && !Trim(id).empty()) return Trim(id);
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0]) return host;
  return "edgeinfer";
}

std::string ResolvePath(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  fs::path base = base_dir.empty() ? fs::current_path() : fs::path(base_dir);
  return (base / path).lexically_normal().string();
}

// A topic level name (device id, prefix level): no wildcards, no separators.
bool HasWildcard(std::string_view s) { return s.find_first_of("+#") != std::string_view::npos; }

// 'text', built by appending (GCC 12 warns falsely about "'" + std::string).
std::string Quote(std::string_view text) {
  std::string q(1, '\'');
  q.append(text);
  q += '\'';
  return q;
}

// Empty when `filter` is a valid MQTT subscription filter, else what is wrong.
std::string FilterProblem(std::string_view filter) {
  const std::string quoted = Quote(filter);
  if (filter.empty()) return "empty topic filter";
  if (filter.size() > 65535) return "topic filter longer than 65535 bytes";
  if (filter.starts_with("$share/")) {
    std::string_view rest = filter.substr(7);
    size_t slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos || slash + 1 == rest.size())
      return quoted + ": a shared subscription is $share/GROUP/FILTER";
    if (HasWildcard(rest.substr(0, slash)))
      return quoted + ": the share group must not contain + or #";
    filter = rest.substr(slash + 1);
  }
  for (size_t start = 0;;) {
    size_t end = filter.find('/', start);
    bool last = end == std::string_view::npos;
    std::string_view level = filter.substr(start, last ? end : end - start);
    if (HasWildcard(level) && level != "+" && level != "#")
      return quoted + ": + and # must fill a whole topic level";
    if (level == "#" && !last) return quoted + ": # must be the last level";
    if (last) return "";
    start = end + 1;
  }
}

// A JSON pointer (RFC 6901): empty (the whole document) or starting with '/'.
void CheckPointer(TableReader& r, std::string_view key, const std::string& value) {
  if (!value.empty() && value[0] != '/')
    r.errors()->Add(r.KeyPath(key), Quote(value) + " is not a JSON pointer (it starts with /)");
}

void ParseTls(const toml::table* t, const std::string& path, const std::string& base_dir,
              Errors* errors, TlsConfig* tls) {
  TableReader r(t, path, errors);
  r.Str("ca_file", &tls->ca_file);
  r.Str("cert_file", &tls->cert_file);
  r.Str("key_file", &tls->key_file);
  r.Bool("verify", &tls->verify);
  r.Finish();
  tls->ca_file = ResolvePath(tls->ca_file, base_dir);
  tls->cert_file = ResolvePath(tls->cert_file, base_dir);
  tls->key_file = ResolvePath(tls->key_file, base_dir);
  if (tls->cert_file.empty() != tls->key_file.empty())
    errors->Add(path, "cert_file and key_file go together");
}

bool IsTlsUri(const std::string& uri) {
  return uri.starts_with("ssl://") || uri.starts_with("mqtts://") || uri.starts_with("wss://");
}

void CheckUri(TableReader& r, const std::string& uri) {
  static const char* kSchemes[] = {"tcp://", "mqtt://", "ssl://", "mqtts://", "ws://", "wss://"};
  for (const char* s : kSchemes) {
    if (uri.starts_with(s) && uri.size() > std::string_view(s).size()) return;
  }
  r.errors()->Add(r.KeyPath("uri"), Quote(uri) +
                                        " is not an MQTT URI (tcp://, ssl://, mqtt://, mqtts://, "
                                        "ws:// or wss:// followed by host:port)");
}

void ParseLink(const toml::table* t, const std::string& path, const std::string& base_dir,
               Errors* errors, LinkConfig* link) {
  TableReader r(t, path, errors);
  r.Str("uri", &link->uri);
  r.Str("client_id", &link->client_id);
  r.Int("mqtt_version", 4, 5, &link->mqtt_version);
  r.Int("keepalive_s", 0, 65535, &link->keepalive_s);
  r.Str("username", &link->username);
  r.Str("password_file", &link->password_file);
  r.Int("reconnect_min_ms", 10, 600000, &link->reconnect_min_ms);
  r.Int("reconnect_max_ms", 10, 3600000, &link->reconnect_max_ms);
  r.Int("qos", 0, 2, &link->qos);
  if (const toml::table* tls = r.Table("tls")) {
    link->tls.emplace();
    ParseTls(tls, r.KeyPath("tls"), base_dir, errors, &*link->tls);
  }
  r.Finish();
  CheckUri(r, link->uri);
  link->password_file = ResolvePath(link->password_file, base_dir);
  if (link->reconnect_max_ms < link->reconnect_min_ms)
    errors->Add(r.KeyPath("reconnect_max_ms"), std::to_string(link->reconnect_max_ms) +
                                                   " is below reconnect_min_ms (" +
                                                   std::to_string(link->reconnect_min_ms) + ")");
  if (link->tls && !IsTlsUri(link->uri))
    errors->Add(r.KeyPath("tls"),
                "given but uri '" + link->uri + "' is not ssl://, mqtts:// or wss://");
  if (!link->password_file.empty() && link->username.empty())
    errors->Add(r.KeyPath("password_file"), "given without a username");
}

void ParseInput(const toml::table* t, const std::string& path, Errors* errors, InputConfig* in) {
  TableReader r(t, path, errors);
  r.Str("format", &in->format);
  r.StrOrStrList("values", &in->values);
  r.Str("timestamp", &in->timestamp);
  r.Str("stream_key", &in->stream_key);
  r.Int("window", 0, 1 << 20, &in->window);
  r.Int("hop", 0, 1 << 20, &in->hop);
  r.Int("max_payload_bytes", 16, 256 << 20, &in->max_payload_bytes);
  if (in->format != "json" && in->format != "f32le")
    errors->Add(r.KeyPath("format"), Quote(in->format) + " is not \"json\" or \"f32le\"");
  if (in->format == "f32le") {
    // A raw payload has no fields; refuse settings that would silently do nothing.
    for (const char* key : {"values", "timestamp", "stream_key"}) {
      if (r.Has(key)) errors->Add(r.KeyPath(key), "only for format = \"json\"");
    }
  }
  r.Finish();
  if (in->values.empty()) errors->Add(r.KeyPath("values"), "needs at least one JSON pointer");
  if (in->values.size() > kMaxValuePointers)
    errors->Add(r.KeyPath("values"), std::to_string(in->values.size()) + " pointers, at most " +
                                         std::to_string(kMaxValuePointers));
  for (const std::string& v : in->values) CheckPointer(r, "values", v);
  CheckPointer(r, "timestamp", in->timestamp);
  CheckPointer(r, "stream_key", in->stream_key);
  if (in->window == 0 && in->hop != 0)
    errors->Add(r.KeyPath("hop"), "needs a window (window = 0: one message is one input)");
  if (in->window > 0 && in->hop > in->window)
    errors->Add(r.KeyPath("hop"), std::to_string(in->hop) + " is outside 0.." +
                                      std::to_string(in->window) + " (the window)");
}

void ParseBatch(const toml::table* t, const std::string& path, Errors* errors, BatchConfig* b) {
  TableReader r(t, path, errors);
  r.Int("max_size", 1, 1024, &b->max_size);
  r.Int("timeout_ms", 0, 60000, &b->timeout_ms);
  r.Int("workers", 1, 64, &b->workers);
  r.Int("queue_capacity", 1, 1 << 20, &b->queue_capacity);
  r.Finish();
  if (b->queue_capacity < b->max_size)
    errors->Add(r.KeyPath("queue_capacity"), std::to_string(b->queue_capacity) +
                                                 " is below max_size (" +
                                                 std::to_string(b->max_size) + ")");
}

void ParsePostprocess(const toml::table* t, const std::string& path, Errors* errors,
                      PostprocessConfig* p) {
  TableReader r(t, path, errors);
  r.Bool("softmax", &p->softmax);
  r.Int("top_k", 0, 1000, &p->top_k);
  r.Double("threshold", -1e30, 1e30, &p->threshold);
  r.Finish();
  if (r.Has("threshold") && p->top_k == 0)
    errors->Add(r.KeyPath("threshold"), "applies to top_k entries; set top_k too");
}

// Empty when `pattern` uses only the known placeholders and expands to a publishable topic.
std::string ResultTopicProblem(const std::string& pattern) {
  AgentConfig dummy;
  dummy.topic_prefix = dummy.device_id = "x";
  const std::string probe = ExpandTopic(pattern, dummy, "x");
  if (probe.empty()) return "empty topic";
  if (probe.find_first_of("{}") != std::string::npos)
    return Quote(pattern) + ": placeholders are {prefix}, {device} and {pipeline}";
  if (HasWildcard(probe)) return Quote(pattern) + ": a topic to publish has no + or #";
  return "";
}

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return false;
  }
  return true;
}

void CheckPipeline(TableReader& r, const PipelineConfig& p) {
  Errors* errors = r.errors();
  if (!ValidName(p.name))
    errors->Add(r.KeyPath("name"), Quote(p.name) + " is not 1-64 of A-Z a-z 0-9 _ - .");
  if (p.model.empty()) errors->Add(r.KeyPath("model"), "required");
  bool onnx = p.model.ends_with(".onnx");
  if (!p.model.empty() && !onnx && !p.model.ends_with(".eim"))
    errors->Add(r.KeyPath("model"), Quote(p.model) + " is neither .eim nor .onnx");
  static const std::set<std::string> kPrecisions = {"fp32", "fp16", "int8", "int4"};
  if (!kPrecisions.count(p.precision))
    errors->Add(r.KeyPath("precision"), Quote(p.precision) + " is not fp32, fp16, int8 or int4");
  else if (r.Has("precision") && !onnx && !p.model.empty())
    errors->Add(r.KeyPath("precision"), "only for .onnx models (an .eim has its precision)");
  if (p.topics.empty()) errors->Add(r.KeyPath("topics"), "at least one topic filter is required");
  for (size_t i = 0; i < p.topics.size(); ++i) {
    std::string problem = FilterProblem(p.topics[i]);
    if (!problem.empty()) errors->Add(r.KeyPath("topics") + "[" + std::to_string(i) + "]", problem);
  }
  std::string problem = ResultTopicProblem(p.result_topic);
  if (!problem.empty()) errors->Add(r.KeyPath("result_topic"), problem);
}

void ParsePipeline(const toml::table* t, const std::string& path, const std::string& base_dir,
                   Errors* errors, PipelineConfig* p) {
  TableReader r(t, path, errors);
  r.Str("name", &p->name);
  r.Str("model", &p->model);
  r.Str("precision", &p->precision);
  r.StrList("topics", &p->topics);
  r.Str("result_topic", &p->result_topic);
  r.Int("max_streams", 1, 1 << 20, &p->max_streams);
  ParseInput(r.Table("input"), r.KeyPath("input"), errors, &p->input);
  ParseBatch(r.Table("batch"), r.KeyPath("batch"), errors, &p->batch);
  ParsePostprocess(r.Table("postprocess"), r.KeyPath("postprocess"), errors, &p->postprocess);
  r.Finish();
  CheckPipeline(r, *p);
  p->model = ResolvePath(p->model, base_dir);
}

void ParseDevice(const toml::table* t, const std::string& base_dir, Errors* errors,
                 AgentConfig* c) {
  TableReader r(t, "device", errors);
  r.Str("id", &c->device_id);
  r.Str("topic_prefix", &c->topic_prefix);
  r.Str("state_dir", &c->state_dir);
  r.Finish();
  if (!r.Has("id")) c->device_id = DefaultDeviceId();
  if (c->device_id.empty() || c->device_id.find_first_of("/+#") != std::string::npos)
    errors->Add("device.id", Quote(c->device_id) + " must be a non-empty topic level (no / + #)");
  if (c->topic_prefix.empty() || HasWildcard(c->topic_prefix))
    errors->Add("device.topic_prefix", Quote(c->topic_prefix) + " must be non-empty, no + or #");
  if (c->state_dir.empty()) errors->Add("device.state_dir", "required");
  c->state_dir = ResolvePath(c->state_dir, base_dir);
}

void ParseMemory(const toml::table* t, Errors* errors, MemoryConfig* m) {
  TableReader r(t, "memory", errors);
  r.Bool("watchdog", &m->watchdog);
  r.Double("step_down", 0.05, 1.0, &m->step_down);
  r.Double("critical", 0.05, 1.0, &m->critical);
  r.Double("recover", 0.01, 1.0, &m->recover);
  r.Int("recover_hold_s", 0, 86400, &m->recover_hold_s);
  r.Double("psi_full_step_down", 0.0, 100.0, &m->psi_full_step_down);
  r.Int("poll_ms", 10, 60000, &m->poll_ms);
  r.Finish();
  if (!(m->recover < m->step_down && m->step_down <= m->critical))
    errors->Add("memory", "needs recover < step_down <= critical");
}

void ParseOutbox(const toml::table* t, Errors* errors, OutboxConfig* o) {
  TableReader r(t, "outbox", errors);
  r.Int64("max_bytes", 4096, int64_t{1} << 40, &o->max_bytes);
  r.Int64("max_age_s", 0, int64_t{10} * 366 * 86400, &o->max_age_s);
  r.Str("synchronous", &o->synchronous);
  r.Int64("memory_fallback_bytes", 0, int64_t{1} << 32, &o->memory_fallback_bytes);
  r.Int("max_in_flight", 1, 65535, &o->max_in_flight);
  r.Finish();
  if (o->synchronous != "off" && o->synchronous != "normal" && o->synchronous != "full")
    errors->Add(r.KeyPath("synchronous"),
                Quote(o->synchronous) + " is not \"off\", \"normal\" or \"full\"");
}

void ParseLinks(TableReader& r, const std::string& base_dir, Errors* errors, AgentConfig* c) {
  ParseLink(r.Table("source"), "source", base_dir, errors, &c->source);
  c->sink_configured = r.Has("sink");
  if (c->sink_configured)
    ParseLink(r.Table("sink"), "sink", base_dir, errors, &c->sink);
  else
    c->sink = c->source;  // the same broker, settings and credentials
  // Two connections with one client id would keep taking each other's session.
  if (c->source.client_id.empty()) c->source.client_id = "edgeinfer-" + c->device_id + "-source";
  if (!c->sink_configured || c->sink.client_id.empty())
    c->sink.client_id = "edgeinfer-" + c->device_id + "-sink";
  if (c->sink.client_id == c->source.client_id && c->sink.uri == c->source.uri)
    errors->Add("sink.client_id",
                Quote(c->sink.client_id) + " is also source.client_id on the same broker");
}

void ParsePipelines(TableReader& r, const std::string& base_dir, Errors* errors, AgentConfig* c) {
  const toml::array* pipelines = r.Tables("pipeline");
  if (!pipelines || pipelines->empty()) {
    if (!r.Has("pipeline")) errors->Add("pipeline", "at least one [[pipeline]] is required");
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < pipelines->size(); ++i) {
    std::string path = "pipeline[" + std::to_string(i) + "]";
    PipelineConfig p;
    ParsePipeline((*pipelines)[i].as_table(), path, base_dir, errors, &p);
    if (!names.insert(p.name).second)
      errors->Add(path + ".name", Quote(p.name) + " is already the name of another pipeline");
    c->pipelines.push_back(std::move(p));
  }
}

Result<toml::table> ParseToml(const std::string& text, const std::string& source_name) {
  try {
    return toml::parse(text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    const auto& at = e.source().begin;
    if (source_name.empty())
      os << "line " << at.line << ", column " << at.column;
    else
      os << source_name << ":" << at.line << ":" << at.column;
    os << ": " << e.description();
    return Status::InvalidArgument(os.str());
  }
}

Result<AgentConfig> ParseWithName(const std::string& text, const std::string& base_dir,
                                  const std::string& source_name) {
  EI_ASSIGN_OR_RETURN(toml::table root, ParseToml(text, source_name));
  Errors errors;
  AgentConfig c;
  TableReader r(&root, "", &errors);
  ParseDevice(r.Table("device"), base_dir, &errors, &c);
  ParseLinks(r, base_dir, &errors, &c);
  ParsePipelines(r, base_dir, &errors, &c);
  TableReader telemetry(r.Table("telemetry"), "telemetry", &errors);
  telemetry.Int("interval_s", 0, 86400, &c.telemetry.interval_s);
  telemetry.Int("prometheus_port", 0, 65535, &c.telemetry.prometheus_port);
  telemetry.Finish();
  ParseMemory(r.Table("memory"), &errors, &c.memory);
  ParseOutbox(r.Table("outbox"), &errors, &c.outbox);
  r.Int("errors_per_minute", 0, 60000, &c.errors_per_minute);
  r.Finish();
  if (errors.empty()) return c;
  Status status = errors.ToStatus();
  return source_name.empty() ? status : status.WithContext(source_name);
}

// --- printing ---------------------------------------------------------------------------------

template <class T>
void Kv(std::ostream& os, const char* key, const T& v) {
  os << key << " = " << toml::value<T>(v) << "\n";
}
void Kv(std::ostream& os, const char* key, int v) { Kv(os, key, int64_t{v}); }
void Kv(std::ostream& os, const char* key, const std::vector<std::string>& v) {
  toml::array a;
  for (const auto& s : v) a.push_back(s);
  os << key << " = " << a << "\n";
}

void PrintLink(std::ostream& os, const char* name, const LinkConfig& l) {
  os << "\n[" << name << "]\n";
  Kv(os, "uri", l.uri);
  Kv(os, "client_id", l.client_id);
  Kv(os, "mqtt_version", l.mqtt_version);
  Kv(os, "keepalive_s", l.keepalive_s);
  Kv(os, "username", l.username);
  Kv(os, "password_file", l.password_file);
  Kv(os, "reconnect_min_ms", l.reconnect_min_ms);
  Kv(os, "reconnect_max_ms", l.reconnect_max_ms);
  Kv(os, "qos", l.qos);
  if (!l.tls) return;
  os << "\n[" << name << ".tls]\n";
  Kv(os, "ca_file", l.tls->ca_file);
  Kv(os, "cert_file", l.tls->cert_file);
  Kv(os, "key_file", l.tls->key_file);
  Kv(os, "verify", l.tls->verify);
}

void PrintPipeline(std::ostream& os, const PipelineConfig& p) {
  os << "\n[[pipeline]]\n";
  Kv(os, "name", p.name);
  Kv(os, "model", p.model);
  if (p.model.ends_with(".onnx")) Kv(os, "precision", p.precision);
  Kv(os, "topics", p.topics);
  Kv(os, "result_topic", p.result_topic);
  Kv(os, "max_streams", p.max_streams);
  os << "[pipeline.input]\n";
  Kv(os, "format", p.input.format);
  if (p.input.format == "json") {
    if (p.input.values.size() == 1)
      Kv(os, "values", p.input.values[0]);
    else
      Kv(os, "values", p.input.values);
    Kv(os, "timestamp", p.input.timestamp);
    Kv(os, "stream_key", p.input.stream_key);
  }
  Kv(os, "window", p.input.window);
  Kv(os, "hop", p.input.hop);
  Kv(os, "max_payload_bytes", p.input.max_payload_bytes);
  os << "[pipeline.batch]\n";
  Kv(os, "max_size", p.batch.max_size);
  Kv(os, "timeout_ms", p.batch.timeout_ms);
  Kv(os, "workers", p.batch.workers);
  Kv(os, "queue_capacity", p.batch.queue_capacity);
  os << "[pipeline.postprocess]\n";
  Kv(os, "softmax", p.postprocess.softmax);
  Kv(os, "top_k", p.postprocess.top_k);
  if (p.postprocess.top_k > 0) Kv(os, "threshold", p.postprocess.threshold);
}

}  // namespace

Result<AgentConfig> ParseConfig(const std::string& toml_text, const std::string& base_dir) {
  return ParseWithName(toml_text, base_dir, "");
}

Result<AgentConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("config file '" + path + "'", errno);
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  std::string base = ec ? "" : abs.parent_path().string();
  auto config = ParseWithName(text.str(), base, path);
  if (!config.ok()) return config.status();
  config->config_path = ec ? path : abs.string();
  return config;
}

std::string ConfigToToml(const AgentConfig& c) {
  std::ostringstream os;
  os << "# effective configuration";
  if (!c.config_path.empty()) os << " of " << c.config_path;
  os << "\n";
  Kv(os, "errors_per_minute", c.errors_per_minute);
  os << "\n[device]\n";
  Kv(os, "id", c.device_id);
  Kv(os, "topic_prefix", c.topic_prefix);
  Kv(os, "state_dir", c.state_dir);
  PrintLink(os, "source", c.source);
  PrintLink(os, "sink", c.sink);
  os << "\n[telemetry]\n";
  Kv(os, "interval_s", c.telemetry.interval_s);
  Kv(os, "prometheus_port", c.telemetry.prometheus_port);
  os << "\n[memory]\n";
  Kv(os, "watchdog", c.memory.watchdog);
  Kv(os, "step_down", c.memory.step_down);
  Kv(os, "critical", c.memory.critical);
  Kv(os, "recover", c.memory.recover);
  Kv(os, "recover_hold_s", c.memory.recover_hold_s);
  Kv(os, "psi_full_step_down", c.memory.psi_full_step_down);
  Kv(os, "poll_ms", c.memory.poll_ms);
  os << "\n[outbox]\n";
  Kv(os, "max_bytes", c.outbox.max_bytes);
  Kv(os, "max_age_s", c.outbox.max_age_s);
  Kv(os, "synchronous", c.outbox.synchronous);
  Kv(os, "memory_fallback_bytes", c.outbox.memory_fallback_bytes);
  Kv(os, "max_in_flight", c.outbox.max_in_flight);
  for (const auto& p : c.pipelines) PrintPipeline(os, p);
  return os.str();
}

std::string ExpandTopic(const std::string& pattern, const AgentConfig& config,
                        const std::string& pipeline) {
  std::string out;
  out.reserve(pattern.size() + 64);
  for (size_t i = 0; i < pattern.size();) {
    auto at = [&](const char* p) { return pattern.compare(i, strlen(p), p) == 0; };
    if (at("{prefix}"))
      out += config.topic_prefix, i += 8;
    else if (at("{device}"))
      out += config.device_id, i += 8;
    else if (at("{pipeline}"))
      out += pipeline, i += 10;
    else
      out += pattern[i++];
  }
  return out;
}

}  // namespace edgeinfer::agent
