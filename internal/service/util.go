package service

import (
	"encoding/json"
	"strconv"
)

func itoa(i int) string { return strconv.Itoa(i) }

func jsonEqual(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
