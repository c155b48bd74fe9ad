# Reference values for src/failpattern/stats/contingency.py: R chisq.test (with and
# without Yates' correction), fisher.test (2 x 2 and r x c, FEXACT), the likelihood-ratio
# G test and Pearson's 'N-1' chi-square (both from their formulas in plain R) on tables from
# the survival datasets, the Ni et al. 2019 paper (brain progression, Table 1 rows:
# columns = non-RT (n = 51), RT (n = 42)) and small hand-checkable tables.
# Usage: cd tests/reference && Rscript contingency.R .
source("_common.R")

# Conditional MLE of the 2 x 2 odds ratio solved tightly (fisher.test's own estimate
# uses uniroot's default tolerance, about 1e-4).
or_tight <- function(x) {
  m <- sum(x[, 1L]); n <- sum(x[, 2L]); k <- sum(x[1L, ])
  obs <- x[1L, 1L]; lo <- max(0L, k - n); hi <- min(k, m); s <- lo:hi
  logdc <- dhyper(s, m, n, k, log = TRUE)
  if (obs == lo) return(0)
  if (obs == hi) return(Inf)
  mean_at <- function(theta) { d <- logdc + theta * s; d <- exp(d - max(d)); sum(s * d) / sum(d) }
  exp(uniroot(function(th) mean_at(th) - obs, c(-50, 50), tol = 1e-13)$root)
}

run <- function(case, x) {
  x <- as.matrix(x)
  emit(case, "dim", dim(x))
  emit(case, "observed", as.numeric(t(x)))            # row-major
  p <- suppressWarnings(chisq.test(x, correct = FALSE))
  emit(case, "pearson_statistic", p$statistic)
  emit(case, "pearson_p", p$p.value)
  emit(case, "df", p$parameter)
  emit(case, "expected", as.numeric(t(p$expected)))   # row-major
  # likelihood-ratio (G) test, SPSS "Likelihood Ratio": 2 sum(O log(O / E)) over cells with O > 0
  o <- x[x > 0]; e <- p$expected[x > 0]
  g <- 2 * sum(o * log(o / e))
  emit(case, "g_statistic", g)
  emit(case, "g_p", pchisq(g, p$parameter, lower.tail = FALSE))
  # Egon Pearson's 'N-1' chi-square (Campbell 2007): X2 (N - 1) / N, same df
  n <- sum(x)
  n1 <- unname(p$statistic) * (n - 1) / n
  emit(case, "n_minus_1_statistic", n1)
  emit(case, "n_minus_1_p", pchisq(n1, p$parameter, lower.tail = FALSE))
  f <- fisher.test(x, workspace = 2e7)
  emit(case, "fisher_p", f$p.value)
  if (all(dim(x) == 2L)) {
    y <- suppressWarnings(chisq.test(x, correct = TRUE))
    emit(case, "yates_statistic", y$statistic)
    emit(case, "yates_p", y$p.value)
    emit(case, "fisher_estimate", f$estimate)
    emit(case, "fisher_estimate_tight", or_tight(x))
  }
}

tab <- function(...) matrix(c(...), nrow = 2L, byrow = TRUE)

# Datasets (tables built from the exported CSVs, as the Python tests build them).
vet <- read_dataset("veteran")
run("veteran_celltype_trt", table(vet$celltype, vet$trt))
lung <- read_dataset("lung")
lung <- lung[!is.na(lung$ph_ecog), ]
run("lung_sex_ph_ecog", table(lung$sex, lung$ph_ecog))

# Ni et al. 2019, brain progression (BBM vs no BBM).
run("paper_brain_progression", tab(17, 18, 13, 45))          # 17/35 vs 13/58, printed p = 0.012
run("paper_multiple_progression", tab(15, 2, 4, 9))          # 15/17 vs 4/13, printed p = 0.002
# Ni et al. 2019, Table 1 rows: [category 1; category 2] x [non-RT, RT], printed p in comment.
run("table1_sex", tab(26, 29, 25, 13))                        # male / female, 0.079
run("table1_histology", tab(50, 40, 1, 2))                   # adeno / non-adeno, 0.452
run("table1_ecog", tab(48, 40, 3, 2))                        # 0-1 / 2, 0.814
run("table1_t_stage", tab(29, 23, 22, 19))                   # T1-2 / T3-4, 0.841
run("table1_n_stage", tab(4, 5, 47, 37))                     # N0 / N1-3, 0.513
run("table1_metastatic_organs", tab(32, 34, 19, 8))          # 1-2 / >=3, 0.055
run("table1_metastatic_lesions", tab(11, 17, 40, 25))        # 1-5 / >=6, 0.053
run("table1_lung_metastases", tab(17, 7, 34, 35))            # yes / no, 0.069
run("table1_liver_metastases", tab(11, 4, 40, 38))           # yes / no, 0.119
run("table1_brain_metastases", tab(13, 22, 38, 20))          # yes / no, 0.010
run("table1_adrenal_metastases", tab(10, 3, 41, 39))         # yes / no, 0.086
run("table1_bone_metastases", tab(19, 14, 32, 28))           # yes / no, 0.698

# Small tables: ties in the Fisher distribution, zeros, ends of the support, r x c.
run("small_symmetric", tab(3, 1, 1, 3))
run("small_zero_cell", tab(7, 0, 2, 5))
run("small_perfect", tab(10, 0, 0, 10))
run("small_reverse", tab(0, 6, 4, 0))
run("small_2x3", matrix(c(3, 0, 4, 1, 5, 2), nrow = 2L, byrow = TRUE))
run("small_3x3", matrix(c(5, 3, 2, 1, 8, 4, 6, 2, 9), nrow = 3L, byrow = TRUE))
run("medium_3x3", matrix(c(15, 12, 9, 10, 14, 11, 8, 9, 12), nrow = 3L, byrow = TRUE))
run("sparse_3x4", matrix(c(4, 0, 1, 2, 0, 3, 1, 0, 2, 1, 0, 5), nrow = 3L, byrow = TRUE))
# tables whose probability is shared exactly by other tables (the tolerance matters)
run("tied_2x3", matrix(c(3, 1, 0, 0, 1, 3), nrow = 2L, byrow = TRUE))
run("tied_3x3", matrix(c(2, 0, 1, 0, 2, 1, 1, 1, 2), nrow = 3L, byrow = TRUE))
run("associated_3x4", matrix(c(12, 3, 1, 0, 6, 10, 4, 1, 1, 4, 9, 8), nrow = 3L, byrow = TRUE))
run("wide_2x6", matrix(c(9, 14, 6, 20, 3, 11, 15, 8, 12, 17, 9, 5), nrow = 2L, byrow = TRUE))

write_fixture("contingency", pkgs = c("stats"))
