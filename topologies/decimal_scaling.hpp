// Exact unit conversion for cluster files: their keys spell units (hbm_TBps, nic_Gbps) while
// foldplan holds SI values, and a spec must survive JSON → SI → JSON unchanged.
#pragma once

namespace foldplan {

// value · 10^places, computed on the value's shortest decimal digits rather than by a floating
// multiply: 3.35 (TB/s) becomes exactly the double nearest 3.35e12, and 3.35e12 shifted back by
// -12 places is exactly 3.35. A floating multiply by 1e12 can land one ulp away either way, which
// would break the round trip of a cluster file through its SI form.
double shift_decimal_point(double value, int places);

} // namespace foldplan
