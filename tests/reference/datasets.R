# Exports the public datasets the reference fixtures are computed on, from R's
# survival package, so the Python suite (which runs without R) reads exactly the
# rows R used. Usage: Rscript datasets.R OUT_DIR  (writes OUT_DIR/datasets/*.csv)
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[1] else "."
dir.create(file.path(out_dir, "datasets"), showWarnings = FALSE)
save <- function(df, name) {
  write.csv(df, file.path(out_dir, "datasets", paste0(name, ".csv")), row.names = FALSE, na = "")
}
# NCCTG lung cancer: 228 patients, days, ties, 63 censored. event: 1 = death.
lung_out <- data.frame(time = lung$time, event = lung$status - 1L, age = lung$age,
                       sex = lung$sex, ph_ecog = lung$ph.ecog, ph_karno = lung$ph.karno,
                       wt_loss = lung$wt.loss, inst = lung$inst)
save(lung_out, "lung")
# Veterans' lung cancer trial: 137 patients, 4 cell types.
vet <- data.frame(time = veteran$time, event = veteran$status, trt = veteran$trt,
                  celltype = as.character(veteran$celltype), karno = veteran$karno,
                  diagtime = veteran$diagtime, age = veteran$age, prior = veteran$prior / 10)
save(vet, "veteran")
# Primary biliary cholangitis: 418 patients; status 0 = censored, 1 = transplant, 2 = death.
pbc_out <- data.frame(time = pbc$time, status = pbc$status, trt = pbc$trt, age = pbc$age,
                      female = as.integer(pbc$sex == "f"), bili = pbc$bili,
                      albumin = pbc$albumin, edema = pbc$edema, stage = pbc$stage)
save(pbc_out, "pbc")
# MGUS: 1384 patients, months; cause 1 = progression to plasma-cell malignancy,
# 2 = death without progression, 0 = censored.
etime <- with(mgus2, ifelse(pstat == 0, futime, ptime))
cause <- with(mgus2, ifelse(pstat == 0, 2L * death, 1L))
mgus_out <- data.frame(time = etime, cause = cause, age = mgus2$age,
                       male = as.integer(mgus2$sex == "M"), hgb = mgus2$hgb,
                       creat = mgus2$creat, mspike = mgus2$mspike)
save(mgus_out, "mgus2")
# Bladder cancer recurrences in (start, stop] counting-process form: 85 patients,
# 178 rows; event 1 = recurrence at stop; enum = recurrence number (1-4).
bladder2_out <- data.frame(id = bladder2$id, rx = bladder2$rx, number = bladder2$number,
                           size = bladder2$size, start = bladder2$start, stop = bladder2$stop,
                           event = as.integer(bladder2$event), enum = as.integer(bladder2$enum))
save(bladder2_out, "bladder2")
# Bladder cancer recurrences in Wei-Lin-Weissfeld (marginal) form: 85 patients x 4 rows, each the
# time from randomisation to the k-th recurrence (enum = k) or censoring; event 1 = recurrence.
bladder_out <- data.frame(id = bladder$id, rx = bladder$rx, number = bladder$number, size = bladder$size,
                          stop = bladder$stop, event = as.integer(bladder$event), enum = as.integer(bladder$enum))
save(bladder_out, "bladder")
