# Reference values for src/failpattern/stats/twosample.py: R wilcox.test with the normal
# approximation (exact = FALSE; correct = FALSE is SPSS's asymptotic p, correct = TRUE is
# R's default) and t.test (pooled and Welch), plus the group summaries, on lung age by sex,
# pbc bilirubin by sex and small tied toy samples. The first sorted group is R's x.
# Usage: cd tests/reference && Rscript twosample.R .
source("_common.R")

run <- function(case, values, group) {
  g <- sort(unique(group))
  x <- values[group == g[1]]; y <- values[group == g[2]]
  emit(case, "values", values)
  emit(case, "group", group)
  for (correct in c(FALSE, TRUE)) {
    w <- wilcox.test(x, y, exact = FALSE, correct = correct)
    tag <- if (correct) "mw_correct" else "mw"
    emit(case, paste0(tag, "_statistic"), w$statistic)
    emit(case, paste0(tag, "_p"), w$p.value)
  }
  s <- t.test(x, y, var.equal = TRUE)
  emit(case, "student_statistic", s$statistic)
  emit(case, "student_df", s$parameter)
  emit(case, "student_p", s$p.value)
  if (length(x) > 1 && length(y) > 1) {
    v <- t.test(x, y)
    emit(case, "welch_statistic", v$statistic)
    emit(case, "welch_df", v$parameter)
    emit(case, "welch_p", v$p.value)
  }
  emit(case, "n", c(length(x), length(y)))
  emit(case, "median", c(median(x), median(y)))
  emit(case, "q1", c(quantile(x, 0.25, type = 7), quantile(y, 0.25, type = 7)))
  emit(case, "q3", c(quantile(x, 0.75, type = 7), quantile(y, 0.75, type = 7)))
  emit(case, "mean", c(mean(x), mean(y)))
  emit(case, "sd", c(sd(x), sd(y)))
}

lung <- read_dataset("lung")
run("lung_age_by_sex", lung$age, lung$sex)
pbc <- read_dataset("pbc")
run("pbc_bili_by_female", pbc$bili, pbc$female)
# Heavily tied toy example (ordinal scores), unequal group sizes.
run("toy_tied", c(1, 2, 2, 3, 3, 3, 4, 2, 3, 3, 4, 4, 5, 5, 1),
    c(0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1))
# Tiny groups where the statistic is negative for the first group.
run("toy_small", c(8.1, 9.4, 7.7, 1.2, 2.5, 3.3, 2.5), c(2, 2, 2, 1, 1, 1, 1))

write_fixture("twosample", pkgs = c("stats"))
