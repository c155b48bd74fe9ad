# Reference values for failpattern.stats.cif: Aalen-Johansen cumulative
# incidence, its variance and Gray's test, from cmprsk::cuminc / timepoints.
#
# Cases (each emits its own time grid "times", the sorted group levels "levels",
# and for group index g = 1..G (levels in sorted order) and cause c:
#   "est_g<g>_c<c>", "var_g<g>_c<c>"  = timepoints(fit, times)$est / $var
#   "lower<L>_g<g>_c<c>", "upper<L>_g<g>_c<c>" = pointwise confidence limits at
#                      level L% (95 in every case; 90 as well in tiny) from est and
#                      var with the log(-log) transform (cmprsk has none; computed
#                      here in plain R, see loglog_ci below)
# and, where there are groups, "stat_rho<r>", "pv_rho<r>", "df_rho<r>" = the
# Tests rows (one value per cause, in cause order 1, 2, ...)):
#   pbc_all            pbc, no groups; causes 1 = transplant, 2 = death
#   pbc_edema          pbc by edema (0, 0.5, 1)
#   pbc_female         pbc by female (0, 1)
#   pbc_female_stage   pbc by female with strata = stage, on the 412 rows with
#                      stage recorded (cuminc's na.omit would drop the 6 rows
#                      with missing stage anyway; we drop them explicitly so
#                      the Python side sees the same rows)
#   mgus2_male         mgus2 by male (heavy ties: months); 1 = progression, 2 = death
#   tiny               deterministic 60-row set with ties at 0, 3 causes, 3 groups,
#                      one group without cause-3 events, 2 strata (one group
#                      absent from stratum 2); its data are emitted as
#                      "time", "cause", "group", "strata"; rho 0, 1 and 0.5
#   singular           8 rows where cuminc's cause-1 test is singular (stat -1)
#   strata_end         10 rows, 2 strata; stratum 1 ends with everyone failed
#                      from cause 1 (pooled incidence exactly 1)
# The grid holds 0, a time before the first event, every distinct time with
# tied events, every 5th distinct time, midpoints between distinct times, the
# largest time of each group and times beyond the largest.
source("_common.R")
suppressPackageStartupMessages(library(cmprsk))

grid <- function(time, status, group) {
  ut <- sort(unique(time))
  ev <- table(time[status != 0])
  tied <- as.numeric(names(ev)[ev >= 2])
  every <- ut[seq(1, length(ut), by = 5)]
  gaps <- seq(1, length(ut) - 1, by = 7)
  mids <- (ut[gaps] + ut[gaps + 1]) / 2
  gmax <- tapply(time, group, max)
  first <- min(time[status != 0])
  sort(unique(c(0, first / 2, tied, every, mids, gmax, max(time) * 1.01, max(time) + 100)))
}

# Pointwise limits of a cumulative incidence F with variance v on the log(-log)
# scale: g = log(-log F) has se sqrt(v) / |F log F|; back-transforming g +- z se
# gives F^exp(+-z sqrt(v) / (F log F)). As F log F < 0 on (0, 1), the minus sign
# gives the lower limit. Edges: v = 0 gives F and F (so F = 0 gives 0 and 0);
# F = 1 (up to 1e-12: cuminc's sums can miss 1 by a few ulps) with v > 0 gives NA,
# log(-log F) being undefined there; NA stays NA.
loglog_ci <- function(est, var, level) {
  z <- qnorm(1 - (1 - level) / 2)
  one <- !is.na(est) & est >= 1 - 1e-12
  lower <- ifelse(one & !is.na(var) & var > 0, NA, est)
  upper <- lower
  inner <- !is.na(est) & !is.na(var) & est > 0 & !one & var > 0
  f <- est[inner]
  shift <- z * sqrt(var[inner]) / (f * log(f))
  lower[inner] <- f^exp(-shift)
  upper[inner] <- f^exp(shift)
  list(lower = lower, upper = upper)
}

run_case <- function(case, time, status, group = NULL, strata = NULL, rhos = c(0, 1),
                     conf = 0.95) {
  has_group <- !is.null(group)
  if (!has_group) group <- rep(1, length(time))
  times <- grid(time, status, group)
  emit(case, "times", times)
  lev <- sort(unique(group))
  emit(case, "levels", lev)
  causes <- sort(unique(status[status != 0]))
  for (rho in rhos) {
    fit <- if (is.null(strata)) cuminc(time, status, group, rho = rho)
           else cuminc(time, status, group, strata, rho = rho)
    if (rho == rhos[1]) {
      tp <- timepoints(fit, times)
      for (g in seq_along(lev)) for (c in causes) {
        row <- paste(lev[g], c)
        emit(case, sprintf("est_g%d_c%d", g, c), tp$est[row, ])
        emit(case, sprintf("var_g%d_c%d", g, c), tp$var[row, ])
      }
      for (level in conf) for (g in seq_along(lev)) for (c in causes) {
        row <- paste(lev[g], c)
        lim <- loglog_ci(tp$est[row, ], tp$var[row, ], level)
        emit(case, sprintf("lower%g_g%d_c%d", 100 * level, g, c), lim$lower)
        emit(case, sprintf("upper%g_g%d_c%d", 100 * level, g, c), lim$upper)
      }
    }
    if (has_group) {
      r <- format(rho)
      emit(case, paste0("stat_rho", r), fit$Tests[, "stat"])
      emit(case, paste0("pv_rho", r), fit$Tests[, "pv"])
      emit(case, paste0("df_rho", r), fit$Tests[, "df"])
    }
  }
}

pbc <- read_dataset("pbc")
run_case("pbc_all", pbc$time, pbc$status)
run_case("pbc_edema", pbc$time, pbc$status, pbc$edema)
run_case("pbc_female", pbc$time, pbc$status, pbc$female)
ps <- pbc[!is.na(pbc$stage), ]
run_case("pbc_female_stage", ps$time, ps$status, ps$female, ps$stage)

mg <- read_dataset("mgus2")
run_case("mgus2_male", mg$time, mg$cause, mg$male)

# tiny: fixed data, no random numbers, so it is identical on every platform
i <- 0:59
tiny_time <- (i * 7) %% 9                       # 0..8, every value tied
tiny_cause <- (i * 5 + i %/% 7) %% 4            # 0 = censored, 1..3
tiny_group <- (i * 11) %% 3 + 1                 # 1, 2, 3
tiny_cause[tiny_group == 3 & tiny_cause == 3] <- 2   # group 3: no cause-3 events
tiny_strata <- ifelse(i %% 4 == 0, 2, 1)
tiny_strata[tiny_group == 2 & tiny_strata == 2] <- 1 # group 2 absent from stratum 2
emit("tiny", "time", tiny_time)
emit("tiny", "cause", tiny_cause)
emit("tiny", "group", tiny_group)
emit("tiny", "strata", tiny_strata)
run_case("tiny", tiny_time, tiny_cause, tiny_group, tiny_strata, rhos = c(0, 1, 0.5),
         conf = c(0.95, 0.9))

# singular: group 2 leaves follow-up before the first cause-1 event, so the
# cause-1 variance is 0 and cuminc reports stat = -1 (pv = 1)
sing_time <- c(1, 2, 3, 4, 5, 6, 7, 8)
sing_cause <- c(2, 0, 2, 0, 1, 1, 0, 1)
sing_group <- c(2, 2, 2, 2, 1, 1, 1, 1)
emit("singular", "time", sing_time)
emit("singular", "cause", sing_cause)
emit("singular", "group", sing_group)
run_case("singular", sing_time, sing_cause, sing_group, rhos = 0)

# strata_end: in stratum 1 every subject fails from cause 1, so its pooled
# incidence reaches exactly 1 (2 of 4, then 2 of 2), while stratum 2 goes on
# to later times (only times with events may update the test's sums)
se_time <- c(1, 1, 2, 2, 1.5, 2.5, 5, 6, 7, 8)
se_cause <- c(1, 1, 1, 1, 1, 2, 0, 1, 2, 1)
se_group <- c(1, 2, 1, 2, 1, 2, 1, 2, 1, 2)
se_strata <- c(1, 1, 1, 1, 2, 2, 2, 2, 2, 2)
emit("strata_end", "time", se_time)
emit("strata_end", "cause", se_cause)
emit("strata_end", "group", se_group)
emit("strata_end", "strata", se_strata)
run_case("strata_end", se_time, se_cause, se_group, se_strata)

write_fixture("cif", pkgs = c("cmprsk"))
