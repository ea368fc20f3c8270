// Training warnings as pure functions, on numbers derived by hand.
#include <catch2/catch.hpp>

#include "train/finetune.h"

using namespace hearth::train;

TEST_CASE("overfitting is two rises of eval loss while train loss falls twice", "[train]") {
  CHECK_FALSE(overfitting_warning({}));
  CHECK_FALSE(overfitting_warning({{10, 2.0, 2.1}, {20, 1.5, 2.2}}));  // two evaluations are not a trend
  const auto w = overfitting_warning({{10, 2.0, 2.10}, {20, 1.5, 2.20}, {30, 1.1, 2.35}});
  REQUIRE(w);
  CHECK_THAT(*w, Catch::Contains("from step 10 to 30 the eval loss rose (2.1000 -> 2.3500) while the train loss fell "
                                 "(2.0000 -> 1.1000)"));
  // Both falling (still learning), eval flat, or train rising too: no warning.
  CHECK_FALSE(overfitting_warning({{10, 2.0, 2.3}, {20, 1.5, 2.2}, {30, 1.1, 2.1}}));
  CHECK_FALSE(overfitting_warning({{10, 2.0, 2.1}, {20, 1.5, 2.1}, {30, 1.1, 2.2}}));
  CHECK_FALSE(overfitting_warning({{10, 1.0, 2.1}, {20, 1.5, 2.2}, {30, 1.7, 2.3}}));
  // Only the last three count.
  CHECK(overfitting_warning({{5, 3.0, 2.0}, {10, 2.0, 2.10}, {20, 1.5, 2.20}, {30, 1.1, 2.35}}));
}
