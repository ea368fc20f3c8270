// Jinja engine unit tests: syntax, filters, tests, methods, whitespace control, errors and robustness.
// The expected strings of the table were produced by Python jinja2 3.1 configured as transformers configures
// it (trim_blocks, lstrip_blocks, loopcontrols, its tojson and raise_exception, strftime_now at a fixed
// 2024-07-26 12:00), then pasted here; they are the reference, not hearth's own output.
#include <catch2/catch.hpp>

#include "chat/fixed_clock.h"

#include <atomic>
#include <thread>
#include <vector>

#include "chat/chat_template.h"
#include "chat/jinja_eval.h"
#include "core/error.h"

using hearth::chat::ChatTemplate;
using hearth::chat::JinjaRaisedError;
using hearth::chat::JinjaRenderOptions;
using ojson = nlohmann::ordered_json;

using hearth::test::fixed_clock;

namespace {

const ojson& variables() {
  static const ojson v = ojson::parse(R"({
    "x": {"y": 1, "n": null},
    "users": [{"name": "al", "active": true, "age": 30}, {"name": "bob", "active": false, "age": 10}],
    "messages": [{"role": "user", "content": " hi "}, {"role": "assistant", "content": "yo"}],
    "s": "héllo wörld"})");
  return v;
}

std::string render(const std::string& source, const ojson& vars = variables()) {
  return ChatTemplate::parse(source, "t.jinja").render(vars, fixed_clock());
}

// The FormatError message of parsing + rendering `source` ("" when it renders).
std::string error_of(const std::string& source, const ojson& vars = variables()) {
  try {
    render(source, vars);
  } catch (const hearth::FormatError& e) {
    return e.what();
  }
  return "";
}

struct Case {
  const char* source;
  const char* expected;
};

const Case kPythonCases[] = {
    {R"J(a
  {% if true %}
  b
  {% endif %}
c)J",
     R"J(a
  b
c)J"},
    {R"J(a  {%- if true -%}  b  {%- endif -%}  c)J", R"J(abc)J"},
    {R"J({% for i in range(3) %}
{{ i }}
{% endfor %})J",
     R"J(0
1
2
)J"},
    {R"J(x {{- ' y ' -}} z)J", R"J(x y z)J"},
    {R"J(  {%+ if true %}keep{% endif %})J", R"J(  keep)J"},
    {R"J({% if true +%}
kept newline{% endif %})J",
     R"J(
kept newline)J"},
    {R"J(a {# c #} b
  {# own line #}
c)J",
     R"J(a  b
c)J"},
    {R"J({% raw %}{{ x }}{% endraw %}|{%- raw -%}  {{ y }}  {%- endraw -%} |)J", R"J({{ x }}|{{ y }}|)J"},
    {R"J(line
windows
)J",
     R"J(line
windows)J"},
    {R"J(trailing newline dropped
)J",
     R"J(trailing newline dropped)J"},
    {R"J({{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 4 / 2 }})J",
     R"J(7|9|64|4|3|-4|2|3.5|2.0)J"},
    {R"J({{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}|{{ 1 + 1.5 }}|{{ true + true }})J",
     R"J(a1NoneTrue|abab|[1, 2]|2.5|2)J"},
    {R"J({{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1.0 }}|{{ 'b' >= 'a' }}|{{ [1, 2] < [1, 3] }}|{{ none == none }})J",
     R"J(True|False|True|True|True|True)J"},
    {R"J({{ 'x' in 'xyz' }}|{{ 2 not in [1, 3] }}|{{ 'k' in {'k': 1} }}|{{ not 0 }}|{{ 0 or 'd' }}|{{ 2 and 3 }}|{{ '' and 1 }})J",
     R"J(True|True|True|True|d|3|)J"},
    {R"J({{ 'y' if x.y else 'n' }}|{{ 'y' if x.n else 'n' }}|[{{ 'never' if false }}])J", R"J(y|n|[])J"},
    {R"J({{ messages|length - 1 }}|{{ messages[0].content|trim ~ '!' }})J", R"J(1|hi!)J"},
    {R"J({{ 'it\'s' }}|{{ "a\tb\n" }}|{{ '\u00e9\x41' }}|{{ 'a' 'b' }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ True }}{{ None }}{{ false }})J",
     R"J(it's|a	b
|éA|ab|1000|1500.0|TrueNoneFalse)J"},
    {R"J({{ [1, 'a', none, true, 2.5] }}|{{ {'k': [1, {'n': none}]} }}|{{ (1, 2) }}|{{ (1,) }}|{{ () }})J",
     R"J([1, 'a', None, True, 2.5]|{'k': [1, {'n': None}]}|(1, 2)|(1,)|())J"},
    {R"J({{ 1.0 }}|{{ 0.1 + 0.2 }}|{{ 1e16 }}|{{ 1e-5 }}|{{ 123.456 }}|{{ 1/3 }}|{{ 2.0 ** 70 }})J",
     R"J(1.0|0.30000000000000004|1e+16|1e-05|123.456|0.3333333333333333|1.1805916207174113e+21)J"},
    {R"J({{ messages[-1].role }}|{{ messages[0]['content'] }}|{{ x['y'] }}|{{ s[1] }}|{{ s[-1] }}|{{ s[::-1] }}|{{ s[2:5] }})J",
     R"J(assistant| hi |1|é|d|dlröw olléh|llo)J"},
    {R"J({{ [1, 2, 3, 4, 5][::2] }}|{{ [1, 2, 3][::-1] }}|{{ [1, 2, 3][-2:] }}|{{ [1, 2, 3][:-1] }}|{{ [1, 2, 3][5:] }}|{{ [1, 2, 3, 4][3:0:-2] }})J",
     R"J([1, 3, 5]|[3, 2, 1]|[2, 3]|[1, 2]|[]|[4, 2])J"},
    {R"J([{{ nope }}]|{{ nope is defined }}|{{ nope is undefined }}|{{ x.zz is defined }}|{{ x.n is none }}|{{ x.zz|default('d') }}|{% for a in nope %}x{% endfor %}|{{ nope|length }})J",
     R"J([]|False|True|False|True|d||0)J"},
    {R"J({{ nope ~ 'a' }}|{{ nope|default('', true) }}|{{ not nope }}|{{ x.get('zz', 'g') }}|{{ x.get('zz') }})J",
     R"J(a||True|g|None)J"},
    {R"J({% for k, v in x.items() %}{{ k }}={{ v }};{% endfor %}|{% for k in x %}{{ k }}{% endfor %}|{% for c in 'ab' %}{{ c }}.{% endfor %})J",
     R"J(y=1;n=None;|yn|a.b.)J"},
    {R"J({% for i in range(4) %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first|int }}{{ loop.last|int }}{{ loop.length }} {% endfor %})J",
     R"J(1043104 2132004 3221004 4310014 )J"},
    {R"J({% for i in range(6) if i is even %}{{ i }}/{{ loop.length }} {% else %}none{% endfor %}|{% for i in [] %}x{% else %}empty{% endfor %})J",
     R"J(0/3 2/3 4/3 |empty)J"},
    {R"J({% for i in range(9) %}{% if i == 2 %}{% continue %}{% elif i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %})J",
     R"J(0134)J"},
    {R"J({% for i in 'abc' %}{{ loop.cycle('x', 'y') }}{{ loop.previtem|default('-') }}{{ loop.nextitem|default('-') }} {% endfor %})J",
     R"J(x-b yac xb- )J"},
    {R"J({% set n = 1 %}{% for i in range(3) %}{% set n = n + i %}{{ n }}{% endfor %}|{{ n }})J", R"J(123|1)J"},
    {R"J({% set ns = namespace(total=0, seen=[]) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }} {{ ns.seen }})J",
     R"J(6 [0, 1, 2, 3])J"},
    {R"J({% set a, b = 'p', 'q' %}{{ a }}{{ b }}{% set t = (1, 2) %}{% set c, d = t %}{{ d }})J", R"J(pq2)J"},
    {R"J({% set block %}
  inner {{ 1 + 1 }}
{% endset %}[{{ block }}])J",
     R"J([  inner 2
])J"},
    {R"J({% macro greet(name, punct='!', times=1) %}{{ ('hi ' ~ name) * times }}{{ punct }}{% endmacro %}{{ greet('a') }}|{{ greet('b', '?') }}|{{ greet('c', times=2) }})J",
     R"J(hi a!|hi b?|hi chi c!)J"},
    {R"J({% macro outer() %}[{{ inner() }}]{% endmacro %}{% macro inner() %}in{% endmacro %}{{ outer() }})J",
     R"J([in])J"},
    {R"J({% filter upper %}shout {{ 'it' }}{% endfilter %}|{% generation %}kept {{ 1 }}{% endgeneration %})J",
     R"J(SHOUT IT|kept 1)J"},
    {R"J({% if x.y == 2 %}a{% elif x.y == 1 %}b{% else %}c{% endif %}{% if nope %}d{% else %}e{% endif %})J",
     R"J(be)J"},
    {R"J({{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ 'MiXed'|upper }}{{ 'MiXed'|lower }}|{{ 'hello big-world (x)'|title }}|{{ 'hELLO'|capitalize }})J",
     R"J(pad|hi|MIXEDmixed|Hello Big-World (X)|Hello)J"},
    {R"J({{ [3, 1, 2]|join('-') }}|{{ users|map(attribute='name')|join(', ') }}|{{ [1, 2]|first }}{{ [1, 2]|last }}|{{ 'ab'|list }}|{{ 12|string ~ 3 }})J",
     R"J(3-1-2|al, bob|12|['a', 'b']|123)J"},
    {R"J({{ '42'|int + 1 }}|{{ '4.7'|int }}|{{ 'x'|int(7) }}|{{ '2.5'|float }}|{{ 3|float }}|{{ -4|abs }}|{{ 2.345|round(2) }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.1|round(0, 'ceil') }})J",
     R"J(43|4|7|2.5|3.0|4|2.35|2.0|4.0|3.0)J"},
    {R"J({{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'héllo'|length }}|{{ [1, 2, 3]|count }}|{{ {'a': 1}|length }})J",
     R"J(a+b+c|bba|5|3|1)J"},
    {R"J({{ users|selectattr('active')|map(attribute='name')|list }}|{{ users|rejectattr('active')|map(attribute='name')|list }}|{{ users|selectattr('name', 'equalto', 'bob')|list|length }}|{{ users|selectattr('age', 'gt', 18)|map(attribute='age')|list }})J",
     R"J(['al']|['bob']|1|[30])J"},
    {R"J({{ [1, 2, 3, 4]|select('odd')|list }}|{{ [1, 2, 3, 4]|reject('divisibleby', 2)|list }}|{{ [0, 1, '', 'a']|select|list }}|{{ ['a', 'b']|map('upper')|list }})J",
     R"J([1, 3]|[1, 3]|[1, 'a']|['A', 'B'])J"},
    {R"J({{ {'b': 1, 'a': 2}|items|list }}|{{ {'b': 1, 'A': 2, 'c': 0}|dictsort }}|{{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}|{{ ['a', 'A', 'b', 'a']|unique|list }})J",
     R"J([('b', 1), ('a', 2)]|[('A', 2), ('b', 1), ('c', 0)]|[('a', 2), ('b', 1)]|['a', 'b'])J"},
    {R"J({{ [3, 1, 2]|sort }}|{{ [3, 1, 2]|sort(reverse=true) }}|{{ users|sort(attribute='age')|map(attribute='name')|join }}|{{ [1, 2]|reverse|list }}|{{ 'abc'|reverse }})J",
     R"J([1, 2, 3]|[3, 2, 1]|bobal|[2, 1]|cba)J"},
    {R"J({{ 'a\nb\n\nc'|indent(2) }}|{{ 'a\nb'|indent(3, true) }}|{{ 'a\n\nb'|indent(1, blank=true) }})J",
     R"J(a
  b

  c|   a
   b|a
 
 b)J"},
    {R"J({{ '<b>&"\''|e }}|{{ '<b>'|escape }}|{{ '<b>'|safe }}|{{ [1, 5, 3]|max }}{{ [4, 2]|min }}{{ [1, 2, 3]|sum }})J",
     R"J(&lt;b&gt;&amp;&#34;&#39;|&lt;b&gt;|<b>|526)J"},
    {R"J({{ {'b': [1, 'é'], 'a': none, 't': true}|tojson }}|{{ {'k': {'n': [1, 2]}, 'e': [], 'o': {}}|tojson(indent=2) }}|{{ {'b': 1, 'a': 2}|tojson(sort_keys=true) }})J",
     R"J({"b": [1, "é"], "a": null, "t": true}|{
  "k": {
    "n": [
      1,
      2
    ]
  },
  "e": [],
  "o": {}
}|{"a": 2, "b": 1})J"},
    {R"J({{ 'q"\\\n\t\x01\u2028'|tojson }}|{{ 'é😀'|tojson(ensure_ascii=true) }}|{{ 2.5|tojson }}|{{ none|tojson }}|{{ nope|default(none)|tojson }})J",
     R"J("q\"\\\n\t\u0001 "|"\u00e9\ud83d\ude00"|2.5|null|null)J"},
    {R"J({{ '  x  '.strip() }}|{{ '\n\nx\n'.lstrip('\n') }}|{{ 'x..'.rstrip('.') }}|{{ 'abc'.startswith('ab') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }})J",
     R"J(x|x
|x|TrueTrue|ABab)J"},
    {R"J({{ 'a b  c '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '</think>x'.split('</think>')[-1] }}|{{ ''.split() }})J",
     R"J(['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|['a,b', 'c']|x|[])J"},
    {R"J({{ 'x-y'.replace('-', '+') }}|{{ '{} & {}'.format(1, 'b') }}|{{ '{0}{0}{k}'.format('r', k='w') }}|{{ 'banana'.find('n') }}{{ 'banana'.count('an') }}|{{ '-'.join(['a', 'b']) }})J",
     R"J(x+y|1 & b|rrw|22|a-b)J"},
    {R"J({{ x.keys()|list }}|{{ x.values()|list }}|{{ x.items()|list }}|{{ [1, 2, 1].index(2) }}|{{ [1, 2, 1].count(1) }}|{{ '12'.isdigit() }})J",
     R"J(['y', 'n']|[1, None]|[('y', 1), ('n', None)]|1|2|True)J"},
    {R"J({{ 'a' is string }}{{ 1 is number }}{{ 1 is integer }}{{ 1.0 is integer }}{{ 1.0 is float }}{{ true is boolean }}{{ x is mapping }}{{ users is iterable }}{{ 'a' is sequence }}{{ 5 is iterable }})J",
     R"J(TrueTrueTrueFalseTrueTrueTrueTrueTrueFalse)J"},
    {R"J({{ true is true }}{{ 1 is true }}{{ false is false }}{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 2 is in [1, 2] }}{{ 1 is eq 1 }}{{ 1 is not equalto 2 }}{{ x.y is not none }})J",
     R"J(TrueFalseTrueTrueFalseTrueFalseTrueTrueTrueTrue)J"},
    {R"J({{ range(3)|list }}|{{ range(1, 7, 2)|list }}|{{ range(5, 0, -2)|list }}|{{ dict(a=1, b=2) }}|{{ namespace(a=1).a }})J",
     R"J([0, 1, 2]|[1, 3, 5]|[5, 3, 1]|{'a': 1, 'b': 2}|1)J"},
    {R"J({{ strftime_now('%Y-%m-%d %H:%M') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %A') }})J",
     R"J(2024-07-26 12:00|26 Jul 2024|July Friday)J"},
};

}  // namespace

TEST_CASE("jinja: renders like Python jinja2 (table)", "[chat]") {
  for (const Case& c : kPythonCases) {
    INFO("template: " << c.source);
    CHECK(render(c.source) == c.expected);
  }
}

TEST_CASE("jinja: syntax errors name origin, line and column", "[chat]") {
  CHECK(error_of("ok\n{% if x %}\nunclosed") ==
        "t.jinja:3:9: unexpected end of template; expected '{% endif %}', got end of template");
  CHECK(error_of("{{ 1 + }}") == "t.jinja:1:8: syntax error in expression; expected a value, name or '(', got '}}'");
  CHECK(error_of("{% for in x %}{% endfor %}") == "t.jinja:1:11: syntax error in for; expected 'in', got 'x'");
  CHECK(error_of("{% set = 1 %}") == "t.jinja:1:8: syntax error in assignment target; expected a name, got '='");
  CHECK(error_of("a\n  {{ 'unterminated }}").rfind("t.jinja:2:6: unterminated string literal", 0) == 0);
  CHECK(error_of("{{ x ").rfind("t.jinja:1:1: unterminated tag", 0) == 0);
  CHECK(error_of("{# never closed").rfind("t.jinja:1:1: unterminated comment", 0) == 0);
  CHECK(error_of("{% endfor %}").rfind("t.jinja:1:4: unknown or unexpected tag 'endfor'", 0) == 0);
  CHECK(error_of("{% include 'x' %}").rfind("t.jinja:1:4: unknown or unexpected tag 'include'", 0) == 0);
  CHECK(error_of("{{ x $ y }}").rfind("t.jinja:1:6: unexpected character '$'", 0) == 0);
  CHECK(error_of("{% raw %}never closed").rfind("t.jinja:1:1: unterminated raw block", 0) == 0);
}

TEST_CASE("jinja: unknown filters, tests and functions are named", "[chat]") {
  // Unknown filters and tests fail at parse time even in branches never taken, as in jinja2.
  CHECK(error_of("{% if false %}{{ x|frobnicate }}{% endif %}") == "t.jinja:1:20: unknown filter 'frobnicate'");
  CHECK(error_of("{{ x is frobnicated }}") == "t.jinja:1:6: unknown test 'frobnicated'");
  CHECK(error_of("{{ frobnicate(1) }}") == "t.jinja:1:4: unknown function 'frobnicate'");
  CHECK(error_of("{{ 'a'.frobnicate() }}") == "t.jinja:1:7: 'string' object has no method 'frobnicate'");
}

TEST_CASE("jinja: runtime errors carry a location", "[chat]") {
  CHECK(error_of("{{ 'a' + 1 }}") == "t.jinja:1:8: unsupported operand type(s) for +: 'string' and 'integer'");
  CHECK(error_of("\n{{ 1 / 0 }}") == "t.jinja:2:6: division by zero");
  CHECK(error_of("{{ nope + 1 }}") == "t.jinja:1:9: 'nope' is undefined");
  CHECK(error_of("{{ -messages|length }}") == "t.jinja:1:4: bad operand type for unary -: 'list'");
  CHECK(error_of("{% for i in 5 %}{% endfor %}") == "t.jinja:1:13: 'integer' object is not iterable");
  CHECK(error_of("{% set ns = 1 %}{% set ns.a = 2 %}").rfind("t.jinja:1:24: cannot assign attribute 'a'", 0) == 0);
  CHECK(error_of("{{ 1 < 'a' }}") == "t.jinja:1:4: '<' not supported between integer and string");
  CHECK(error_of("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}") == "t.jinja:1:34: macro 'm' has no parameter 'b'");
  CHECK(error_of("{% macro r() %}{{ r() }}{% endmacro %}{{ r() }}").find("recursed too deeply") != std::string::npos);
}

TEST_CASE("jinja: raise_exception is a FormatError carrying the message", "[chat]") {
  auto tpl = ChatTemplate::parse("line one\n{{ raise_exception('Roles must alternate: ' ~ n) }}", "tpl");
  try {
    tpl.render(ojson{{"n", 3}});
    FAIL("expected an exception");
  } catch (const JinjaRaisedError& e) {
    CHECK(e.message() == "Roles must alternate: 3");
    CHECK(std::string(e.what()) == "tpl:2:4: raise_exception: Roles must alternate: 3");
    CHECK(e.exit_code() == hearth::ExitCode::kFormat);
  }
}

TEST_CASE("jinja: nlohmann::json and ordered_json inputs", "[chat]") {
  auto tpl = ChatTemplate::parse("{{ d|tojson }}", "t");
  CHECK(tpl.render(nlohmann::json{{"d", {{"b", 1}, {"a", 2}}}}) == R"({"a": 2, "b": 1})");  // json sorts keys
  CHECK(tpl.render(ojson{{"d", {{"b", 1}, {"a", 2}}}}) == R"({"b": 1, "a": 2})");           // ordered keeps them
  CHECK(ChatTemplate::parse("{{ v }}|{{ v|tojson }}", "t").render(ojson{{"v", 3.0}}) == "3.0|3.0");
  CHECK(ChatTemplate::parse("{{ v }}", "t").render(ojson{{"v", 18446744073709551615ull}}) == "1.8446744073709552e+19");
}

TEST_CASE("jinja: Python whitespace and Unicode semantics of strip/trim/split", "[chat]") {
  // Python's str.strip() strips Unicode whitespace (NBSP, ideographic space, U+001C..U+001F) but not U+200B.
  CHECK(render("[{{ s|trim }}]", ojson{{"s", "\u00a0\u3000 x \x1f\u2028"}}) == "[x]");
  CHECK(render("[{{ s|trim }}]", ojson{{"s", "\u200bx\u200b"}}) == "[\u200bx\u200b]");
  CHECK(render("{{ s.split() }}", ojson{{"s", "a\u00a0b\u3000c"}}) == "['a', 'b', 'c']");
  CHECK(render("{{ s|length }}|{{ s[1:3] }}", ojson{{"s", "😀é你"}}) == "3|é你");
}

TEST_CASE("jinja: truncated and mangled templates never crash", "[chat]") {
  const std::string sources[] = {
      "{%- for m in messages -%}{{ m.role | upper }}{% if loop.last %}!{% endif %}{%- endfor %}",
      "{% set ns = namespace(a=[1, {'k': (2, 3)}]) %}{{ ns.a[1]['k'][0] ~ 'x' if ns else 'y' }}",
      "{% macro f(a, b='q') %}{{ a ~ b }}{% endmacro %}{{ f(1) }}{# c #}{% raw %}{{ r }}{% endraw %}",
      "{{ messages[::-1] | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(', ') }}",
      "{{ '\\u00e9\\x41\\n' ~ \"q\\\"\" }}{%+ if true -%} a {%- elif false %}b{% else %}c{% endif +%}",
  };
  size_t parsed = 0, failed = 0;
  for (const std::string& full : sources) {
    for (size_t n = 0; n <= full.size(); ++n) {
      for (int variant = 0; variant < 2; ++variant) {
        std::string s = variant == 0 ? full.substr(0, n)
                                     : full.substr(0, n) + full.substr(std::min(n + 3, full.size()));
        try {
          render(s);
          ++parsed;
        } catch (const hearth::FormatError&) {
          ++failed;
        }
      }
    }
  }
  CHECK(parsed > 0);
  CHECK(failed > 0);
  // Deep nesting is an error, not a stack overflow.
  CHECK(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested too deeply") !=
        std::string::npos);
  CHECK(error_of("{{ " + std::string(5000, '[') + std::string(5000, ']') + " }}").find("nested too deeply") !=
        std::string::npos);
}

TEST_CASE("jinja: concurrent renders of one template", "[chat]") {
  auto tpl = ChatTemplate::parse(
      "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{{ m.content }}{% endfor %}"
      "{{ ns.n }}",
      "t");
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        ojson msgs = ojson::array();
        for (int k = 0; k <= t; ++k) msgs.push_back({{"content", std::to_string(k)}});
        std::string expected;
        for (int k = 0; k <= t; ++k) expected += std::to_string(k);
        if (tpl.render(ojson{{"messages", msgs}}) != expected + std::to_string(t + 1)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(bad == 0);
}
